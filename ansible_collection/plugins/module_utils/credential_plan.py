# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""What the credential module does with an existing credential: one decision for both runs.

Check mode and the real run decide alike from the core's one judge
(``passgeni_core.assess``): a certificate revoked or expiring is a rotation (``changed``);
a value changed by hand is a conflict (the task fails, as ``passgeni provision`` does,
unless ``force: true``), never a silent overwrite. Only when the authority cannot be asked
does check mode fall back to what the store records (:func:`plan_offline`).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

try:
    import passgeni_core as core
except ImportError:
    core = None

#: Findings that mean the stored value is not the one certified: someone changed it.
HAND_CHANGED = frozenset([
    'value_replaced', 'target_mismatch', 'version_mismatch',
    'binding_missing', 'binding_mismatch', 'provenance_mismatch',
])
_LIFECYCLE = frozenset(['standard_mismatch', 'expiring', 'metadata_lagging'])


def iso(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.isoformat().replace('+00:00', 'Z')


def utcnow():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc)


def refs_facts(refs):
    if refs is None:
        return {}
    return dict(
        cert_id=refs.cert_id,
        cert_url=refs.cert_url,
        compliance_standard=refs.standard,
        expires_at=iso(refs.expires_at),
    )


def public_diff(facts):
    if not facts:
        return {}
    return dict((k, facts.get(k)) for k in ('cert_id', 'cert_url', 'compliance_standard', 'expires_at'))


class Conflict(Exception):
    """The stored value was changed outside PassGeni: replacing it needs ``force``."""


def judged_action(current, verdict, params, preset):
    """``(action, reason)`` for an existing credential from the judge's ``verdict``.

    ``action`` is ``none``, ``repaired``, ``replaced`` or ``rotated``. Raises
    :class:`Conflict` for a value changed by hand (``force`` / ``state: rotated`` are
    decided before the judge is asked).
    """
    reasons = set(verdict.reasons)
    if verdict.value_covered and 'expiring' not in reasons:
        if 'metadata_lagging' in reasons:
            return 'repaired', 'the certificate metadata beside the credential is incomplete'
        return 'none', 'certificate %s is valid until %s' % (verdict.cert_id, iso(verdict.expires_at))
    changed_by_hand = sorted(reasons & HAND_CHANGED)
    if changed_by_hand:
        raise Conflict(
            '%s already holds a value that is not the certified one (%s: %s); replacing it '
            'would overwrite a password someone set: set force: true (or state: rotated) to '
            'rotate it' % (current.uri, ', '.join(changed_by_hand), verdict.detail)
        )
    if verdict.status == 'revoked' and verdict.revocation_reason == 'not stored':
        return 'replaced', 'certificate %s was revoked as not stored' % verdict.cert_id
    if reasons <= _LIFECYCLE:
        if 'expiring' not in reasons:
            return 'rotated', 'certified for %s, not %s' % (verdict.standard, preset)
        left = verdict.detail if verdict.status == 'expiring' else (
            'expires in %d day(s)' % max(0, (verdict.expires_at - utcnow()).days))
        return 'rotated', 'certificate expires within %d days (%s)' % (params['rotate_before'], left)
    detail = ': ' + verdict.detail if verdict.detail else ''
    return 'rotated', 'certificate is %s%s' % (verdict.status.replace('_', ' '), detail)


def predicted(params, uri, current, action, reason):
    """The check-mode result for ``action``: what the real run will report, nothing written."""
    chosen = core.get_preset(params['preset'])
    refs = None if current is None else (current.metadata_refs or current.refs)
    before = refs_facts(refs)
    shown = {'replaced': 'rotated'}.get(action, action)
    result = dict(changed=shown != 'none', destination=str(uri), action=shown, reason=reason)
    result.update(before)
    after = dict(before) if shown in ('none', 'repaired') else dict(
        cert_id='(new certificate)', cert_url='(new certificate)',
        compliance_standard=chosen.claim_id, expires_at='(in 365 days)')
    result['_diff'] = dict(before=before, after=after)
    return result, None


def plan_offline(params, uri, current):
    """Check mode when the authority cannot be asked: decide from what the store records."""
    preset = core.get_preset(params['preset']).id
    refs = None if current is None else (current.metadata_refs or current.refs)
    rotate = params['state'] == 'rotated' or params['force']
    if current is None or current.password is None:
        action, reason = 'created', 'no credential at the destination'
    elif rotate:
        action, reason = 'rotated', 'state=rotated' if params['state'] == 'rotated' else 'force=true'
    elif current.refs is None:
        action, reason = 'rotated', 'the stored credential has no certificate references'
    # The metadata names the standard as its certificate does: SOC2, or soc2 before claim ids.
    elif refs.standard is not None and not core.same_standard(refs.standard, preset):
        action, reason = 'rotated', 'certified for %s, not %s' % (refs.standard, preset)
    elif refs.expires_at is None or current.metadata_refs is None \
            or current.metadata_refs.cert_id != current.refs.cert_id:
        action, reason = 'repaired', 'the certificate metadata beside the credential is incomplete'
    elif (refs.expires_at - utcnow()).total_seconds() <= params['rotate_before'] * 86400:
        action, reason = 'rotated', 'certificate expires within %d days' % params['rotate_before']
    else:
        action, reason = 'none', ('certificate valid until %s (the authority could not be asked: '
                                  'revocation and the value not checked)' % iso(refs.expires_at))
    return predicted(params, uri, current, action, reason)
