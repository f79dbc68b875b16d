# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Thin adapter between Ansible and the ``passgeni`` library (``passgeni_core``).

Every entry point here does the same four things: read the options, build the
core's objects, make one call into the core, and turn the core's errors
(``PassgeniError`` with a stable ``code``) into :class:`PassgeniFailure`, which
modules report with ``fail_json(msg=..., error_code=...)`` and lookups raise as
``AnsibleError``. The core is a requirement of the host that runs the code
(like ``hvac`` for community.hashi_vault); when it is missing, modules fail with
``missing_required_lib('passgeni')``.

Nothing returned from here to a caller's result holds a secret: passwords are
handed back separately and only the caller decides to expose them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback
from contextlib import contextmanager

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.passgeni.compliance.plugins.module_utils.credential_plan import (
    Conflict,
    iso,
    judged_action,
    plan_offline as _plan_offline,
    predicted,
    public_diff as _public_diff,
    refs_facts as _refs_facts,
)
from ansible_collections.passgeni.compliance.plugins.module_utils.vault_options import (
    store_options,
    vault_argument_spec,
)

try:
    import passgeni_core as core
except ImportError:
    core = None
    PASSGENI_IMPORT_ERROR = traceback.format_exc()
    HAS_PASSGENI = False
else:
    PASSGENI_IMPORT_ERROR = None
    HAS_PASSGENI = True


class PassgeniFailure(Exception):
    """A failure to report: a one-line message without secrets and the core's error code."""

    def __init__(self, message, code):
        super(PassgeniFailure, self).__init__(message)
        self.message = message
        self.code = code


def authority_argument_spec():
    """The authority connection options (see the ``passgeni.compliance.authority`` doc fragment)."""
    return dict(
        url=dict(type='str', fallback=(env_fallback, ['PASSGENI_URL'])),
        api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['PASSGENI_API_KEY'])),
        timeout=dict(type='float', fallback=(env_fallback, ['PASSGENI_TIMEOUT'])),
    )


#: The credential module's own options (besides the authority and Vault connection options).
CREDENTIAL_OPTIONS = dict(
    preset=dict(type='str', required=True),
    length=dict(type='int'),
    exclude=dict(type='str', default=''),
    exclude_lookalikes=dict(type='bool', default=False),
    special_chars=dict(type='str'),
    destination=dict(type='str'),
    store_options=dict(type='dict'),
    label=dict(type='str'),
    state=dict(type='str', choices=['present', 'rotated'], default='present'),
    force=dict(type='bool', default=False),
    rotate_before=dict(type='int', default=30),
    return_password=dict(type='bool', default=False, no_log=False),
    execute_on=dict(type='str', choices=['auto', 'controller', 'host'], default='auto'),
)


def credential_argument_spec():
    """Every option of the credential module: the module and its action plugin validate alike."""
    spec = authority_argument_spec()
    spec.update(vault_argument_spec())
    spec.update((k, dict(v)) for k, v in CREDENTIAL_OPTIONS.items())
    return spec


def require_core(module):
    """Fail the module the standard way when the passgeni library is not installed."""
    if not HAS_PASSGENI:
        module.fail_json(
            msg=missing_required_lib('passgeni', url='https://pypi.org/project/passgeni/'),
            exception=PASSGENI_IMPORT_ERROR,
            error_code='missing_library',
        )


def missing_core_message():
    return missing_required_lib('passgeni', url='https://pypi.org/project/passgeni/')


@contextmanager
def translate_errors():
    """Turn the core's errors into :class:`PassgeniFailure` (message and code, never a traceback)."""
    try:
        yield
    except PassgeniFailure:
        raise
    except core.PassgeniError as exc:
        raise PassgeniFailure(exc.message, exc.code)


def _config(params):
    return core.resolve_config(
        url=params.get('url') or None,
        api_key=params.get('api_key') or None,
        timeout=params.get('timeout'),
        url_option='the url option',
        embedded_option='url: embedded',
    )


def require_authority(params):
    """Fail closed: refuse (``authority_not_configured``) unless an authority is configured.

    Called before a store is opened, so nothing is written without an authority.
    """
    with translate_errors():
        return _config(params).require_authority()


@contextmanager
def authority(params, connections=None):
    """An ``AuthorityClient`` for the connection options (``url: embedded`` runs one in-process).

    With ``connections`` (a ``reuse.Connections``), a client kept open across items.
    """
    config = require_authority(params)
    if connections is not None:
        with connections.authority(config) as client:
            yield client
        return
    with core.connect(config) as client:
        yield client


# --- generation parameters -------------------------------------------------------------


def generation_parameters(params):
    """``GenerationParameters`` for the preset with the task's adjustments (validated by the core)."""
    adjust = {}
    for name in ('length', 'special_chars'):
        if params.get(name) is not None:
            adjust[name] = params[name]
    adjust['exclude'] = params.get('exclude') or ''
    adjust['exclude_lookalikes'] = bool(params.get('exclude_lookalikes'))
    return core.GenerationParameters.for_preset(params['preset'], **adjust)


def certificate_facts(issued):
    """The public facts of an ``IssuedCertificate`` (or ``CertificateRecord``)."""
    return dict(
        cert_id=issued.cert_id,
        cert_url=issued.cert_url,
        compliance_standard=issued.compliance_standard,
        standards_met=list(issued.standards_met),
        entropy_bits=issued.entropy_bits,
        expires_at=iso(issued.expires_at),
    )


# --- lookup: generate + certify on the controller --------------------------------------------


def provision_password(params, label=None):
    """Generate and certify one password; returns a dict with the password and the certificate."""
    with translate_errors():
        parameters = generation_parameters(params)
        entropy_source = core.detect_entropy_source()
        with authority(params) as client:
            result = core.provision(
                client,
                params['preset'],
                parameters=parameters,
                label=label,
                entropy_source=entropy_source,
            )
    out = certificate_facts(result.certificate)
    out['token'] = result.token
    out['password'] = result.credential.password
    return out


# --- certificate_info: verify by token, URL or id ------------------------------------------------


def _split_cert_url(value):
    """``https://host[/prefix]/cert/{id}`` -> (authority base URL, id)."""
    try:
        from urllib.parse import urlsplit, unquote
    except ImportError:  # pragma: no cover - Python 2 is not supported by the core anyway
        raise PassgeniFailure('the passgeni library needs Python 3', 'invalid_request')
    parts = urlsplit(value.strip())
    if parts.scheme in ('http', 'https') and parts.hostname and not parts.query:
        path = parts.path.rstrip('/')
        for marker in ('/cert/', '/api/certificates/'):
            head, sep, tail = path.rpartition(marker)
            if sep and tail and '/' not in tail:
                return '%s://%s%s' % (parts.scheme, parts.netloc, head), unquote(tail)
    raise PassgeniFailure(
        '%r is not a certificate URL (expected https://AUTHORITY/cert/ID)' % value[:100],
        'invalid_request',
    )


def _judged(verdict):
    """(Certificate, status, record) from the judge's verdict, or the failure it found."""
    if verdict.certificate is None or verdict.status in ('invalid', 'error', 'no_certificate'):
        if isinstance(verdict.error, core.PassgeniError):
            raise verdict.error
        raise PassgeniFailure(verdict.detail, 'invalid_token')
    # 'expiring' is still valid; revoked outranks expired (the judge's order).
    status = {'revoked': 'revoked', 'expired': 'expired'}.get(verdict.status, 'valid')
    return verdict.certificate, status, verdict.record


def verify_reference(params):
    """Verify a certificate given by ``token``, ``cert_url`` or ``cert_id``; returns public facts.

    The one judge (``passgeni_core.assess_certificate``) decides: signature as of
    issuance, ``jti``, the authority's record, revocation and expiry.
    """
    online = params.get('online', True)
    if not any((params.get(name) or '').strip() for name in ('token', 'cert_url', 'cert_id')):
        # Ansible's required_one_of accepts empty strings; refuse them here.
        raise PassgeniFailure(
            'one of token, cert_url or cert_id must be a non-empty string', 'invalid_request'
        )
    with translate_errors():
        if (params.get('cert_url') or '').strip():
            base, cert_id = _split_cert_url(params['cert_url'])
            # A URL names its authority: the certificate's issuer must be that authority.
            with core.AuthorityClient(
                base, timeout=params.get('timeout') or 10.0, issuer=base
            ) as client:
                verdict = core.assess_certificate(client, cert_id=cert_id)
        else:
            with authority(params) as client:
                if (params.get('token') or '').strip():
                    verdict = core.assess_certificate(
                        client, token=params['token'].strip(), online=online
                    )
                else:
                    verdict = core.assess_certificate(client, cert_id=params['cert_id'].strip())
        cert, status, record = _judged(verdict)
    claims = cert.claims
    result = dict(
        valid=status == 'valid',
        status=status,
        checked_online=record is not None,
        cert_id=claims.jti,
        cert_url=record.cert_url if record is not None else None,
        kid=cert.kid,
        issuer=claims.iss,
        compliance_standard=claims.compliance_standard,
        standards_met=list(claims.standards_met),
        entropy_bits=claims.entropy_bits,
        issued_at=iso(claims.issued_at),
        expires_at=iso(claims.expires_at),
        revoked_at=iso(record.revoked_at) if record is not None else None,
        revocation_reason=record.revocation_reason if record is not None else None,
        label=claims.label,
        target=claims.target.to_dict() if claims.target else None,
        claims=claims.to_payload(),
        token=cert.token,
    )
    if params.get('require_valid') and status != 'valid':
        if status == 'revoked':
            raise PassgeniFailure(
                'certificate %s was revoked at %s: %s'
                % (claims.jti, result['revoked_at'], result['revocation_reason'] or 'no reason given'),
                'certificate_revoked',
            )
        raise PassgeniFailure(
            'certificate %s expired at %s' % (claims.jti, result['expires_at']), 'certificate_expired'
        )
    return result


# --- certificate: revoke ------------------------------------------------------------------------------


def certificate_state(params, check_mode=False):
    """Make sure the certificate is revoked; returns (changed, facts, before, after)."""
    cert_id = params['cert_id'].strip()
    with translate_errors():
        with authority(params) as client:
            record = client.get_certificate(cert_id)
            before = record
            if record.revoked:
                changed = False
            else:
                changed = True
                if not check_mode:
                    record = client.revoke(cert_id, params['reason'])
    facts = dict(
        cert_id=record.cert_id,
        cert_url=record.cert_url,
        status='revoked' if (changed and check_mode) else record.status,
        revoked_at=iso(record.revoked_at),
        revocation_reason=params['reason'] if (changed and check_mode) else record.revocation_reason,
        compliance_standard=record.compliance_standard,
        expires_at=iso(record.expires_at),
    )
    diff = dict(
        before=dict(cert_id=before.cert_id, status=before.status,
                    revocation_reason=before.revocation_reason),
        after=dict(cert_id=facts['cert_id'], status=facts['status'],
                   revocation_reason=facts['revocation_reason']),
    )
    return changed, facts, diff


# --- credential: generate, certify, store -------------------------------------------------------------


def ensure_credential(params, check_mode=False, connections=None):
    """Make sure a certified credential exists (at ``destination`` if given).

    ``connections`` (a ``reuse.Connections``) keeps the authority client and the store open
    for the next call (the action plugin's loop items); without it both are closed here.
    Returns ``(result, password)``: ``result`` holds public facts only (plus a
    ``_diff`` the module shows or drops); ``password`` is ``None`` unless a new
    credential was generated, and the caller decides whether to return it.
    """
    destination = params.get('destination') or None
    with translate_errors():
        parameters = generation_parameters(params)
        if destination is None:
            return _generate_only(params, parameters, check_mode)
        return _ensure_stored(params, parameters, destination, check_mode, connections)


def _generate_only(params, parameters, check_mode):
    # Even in check mode: a plan the real run cannot carry out would mislead.
    require_authority(params)
    result = dict(changed=True, destination=None, action='generated',
                  reason='no destination: a new credential is generated on every run')
    if check_mode:
        # As the certificate will name it (its claim id, e.g. SOC2).
        claim_id = core.get_preset(params['preset']).claim_id
        result['_diff'] = dict(before={}, after={'compliance_standard': claim_id})
        return result, None
    with authority(params) as client:
        provisioned = core.provision(
            client, params['preset'], parameters=parameters, label=params.get('label'),
            entropy_source=core.detect_entropy_source(),
        )
    facts = certificate_facts(provisioned.certificate)
    result.update(facts)
    result['_diff'] = dict(before={}, after=_public_diff(facts))
    return result, provisioned.credential.password


def _store_api(name):
    """A function of the core's store API (``open_store``, ``provision_into_store``...)."""
    found = getattr(core, name, None)
    if found is None:
        raise PassgeniFailure(
            'this version of the passgeni library has no store support (%s); upgrade passgeni' % name,
            'unknown_store_scheme',
        )
    return found


def _decide(params, client, store, current, preset):
    """``(action, reason, verdict)`` for the credential at the destination (see credential_plan)."""
    if current is None or current.password is None:
        return 'created', 'no credential at the destination', None
    if params['state'] == 'rotated':
        return 'rotated', 'state=rotated', None
    if params['force']:
        return 'rotated', 'force=true', None
    verdict = _store_api('assess')(client, store.system, current,
                                   expiring_days=params['rotate_before'], preset=preset)
    if verdict.status == 'error':
        return None, verdict.detail, verdict
    try:
        action, reason = judged_action(current, verdict, params, preset)
    except Conflict as conflict:
        raise PassgeniFailure(str(conflict), 'store_conflict')
    return action, reason, verdict


def _ensure_stored(params, parameters, destination, check_mode, connections=None):
    uri = _store_api('parse_store_uri')(destination)
    # Before the store is even opened, and in check mode too (fail closed).
    require_authority(params)
    # The user's store options (e.g. kms_key_id), checked against what the backend
    # accepts, and the Vault connection the module's options describe.
    settings = _store_api('store_settings')(uri.scheme, params.get('store_options') or {})
    settings.update(store_options(params, uri))
    if connections is not None:
        store = connections.store(uri, settings)
    else:
        store = _store_api('open_store')(uri, **settings)
    try:
        current = store.read(uri)
        preset = core.get_preset(params['preset']).id
        before = _refs_facts(None if current is None else (current.metadata_refs or current.refs))
        if check_mode:
            # The same judge as the real run (it only reads); offline only without an authority.
            try:
                with authority(params, connections) as client:
                    action, reason, dummy = _decide(params, client, store, current, preset)
            except core.AuthorityUnavailable:
                action = None
            if action is None:
                return _plan_offline(params, uri, current)
            return predicted(params, uri, current, action, reason)
        with authority(params, connections) as client:
            action, reason, verdict = _decide(params, client, store, current, preset)
            if action is None:
                # Never rotate because the authority could not be asked.
                raise PassgeniFailure(
                    '%s: the existing credential could not be checked: %s' % (current.uri, reason),
                    'authority_unavailable',
                )
            stored = _store_api('provision_into_store')(
                client, store, uri, preset,
                parameters=parameters,
                entropy_source=core.detect_entropy_source(),
                label=params.get('label'),
                rotate=action == 'rotated',
            )
    finally:
        if connections is None:
            store.close()
    action = dict(created='created', rotated='rotated', replaced='rotated',
                  unchanged='none', repaired='repaired').get(stored.outcome, stored.outcome)
    facts = _refs_facts(stored.refs)
    public = stored.public_dict()
    facts['standards_met'] = public.get('standards_met')
    facts['entropy_bits'] = public.get('entropy_bits')
    # Kept: report the existing certificate's facts as its verified claims state them.
    claims = verdict.claims if stored.provisioned is None and verdict is not None else None
    if claims is not None:
        facts.update(standards_met=list(claims.standards_met), entropy_bits=claims.entropy_bits,
                     compliance_standard=claims.compliance_standard,
                     expires_at=iso(claims.expires_at))
    result = dict(changed=action != 'none', destination=str(stored.uri), action=action,
                  reason=reason, store_version=stored.version)
    result.update(facts)
    if stored.previous_cert_id:
        result['previous_cert_id'] = stored.previous_cert_id
    if stored.warnings:
        result['warnings'] = list(stored.warnings)
    result['_diff'] = dict(before=before, after=_public_diff(facts))
    password = stored.credential.password if stored.provisioned is not None else None
    return result, password
