"""The coverage dashboard (``/dashboard``) and the scan submission it shows (``POST /api/scans``).

Server-rendered HTML, no script at all (its CSP has ``script-src 'none'``), charts as inline
SVG: it works air-gapped and in any browser. Signing in exchanges an API key (typed once,
checked, rate-limited and recorded as any API call) for a 30-minute session cookie:
``HttpOnly``, ``SameSite=Strict``, ``Path=/dashboard``, and ``Secure`` when the authority is
reached over HTTPS (its public URL or the request). Forms carry a CSRF token: the sign-in
form a double-submit cookie, the signed-in forms the session's own token; a cross-origin
``Origin`` is refused. What each view computes is in :mod:`._dashboard_views`; what it
reads in :mod:`._dashboard_data`.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from passgeni_core import InvalidRequest, RateLimited, Unauthenticated
from passgeni_core.model import is_embedded_issuer

from ._coverage import Coverage
from ._dashboard_data import (
    BUCKETS,
    SESSION_LIFETIME,
    CertFilters,
    DashboardData,
    Viewer,
    page_count,
)
from ._dashboard_views import (
    BUCKET_LABELS,
    Bar,
    bars_svg,
    certificates_csv,
    certificates_oscal,
    coverage_csv,
    coverage_oscal,
    stacked_svg,
)
from ._issuance_http import dumps
from ._scans import COVERED
from ._util import now

__all__ = ["SESSION_COOKIE", "add_dashboard_routes"]

SESSION_COOKIE = "passgeni_dashboard"
CSRF_COOKIE = "passgeni_signin"
PAGE_SIZE = 50
_FORM_LIMIT = 4096


def _download(content: bytes | str, filename: str) -> Response:
    """An export of the current view, as an attachment."""
    media = "text/csv; charset=utf-8" if filename.endswith(".csv") else "application/json"
    return Response(
        content,
        media_type=media,
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
    # dashboard's own forms, and the Origin check below wants the real one.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

VIEWS = (
    ("overview", "/dashboard", "Overview"),
    ("certificates", "/dashboard/certificates", "Certificates"),
    ("stores", "/dashboard/stores", "Stores and targets"),
    ("coverage", "/dashboard/coverage", "Coverage"),
    ("anomalies", "/dashboard/anomalies", "Anomalies"),
)


def add_dashboard_routes(
    app: FastAPI, svc: Any, *, principal: Any, json_body: Any, ip_of: Any
) -> DashboardData:
    """The dashboard's routes on ``app``; its data layer (also for tests and benchmarks)."""
    data = DashboardData(svc.storage, svc.settings)
    coverage = Coverage(svc.storage, svc.settings)
    cfg = svc.settings
    env = Environment(
        loader=PackageLoader("passgeni_authority", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals["bucket_labels"] = BUCKET_LABELS

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or str(cfg.public_url).startswith("https://")

    def cert_base(request: Request) -> str:
        base = (
            str(request.base_url).rstrip("/")
            if is_embedded_issuer(cfg.public_url)
            else cfg.public_url
        )
        return f"{base}/cert"

    def html(template: str, http_status: int = 200, /, **context: Any) -> HTMLResponse:
        return HTMLResponse(
            env.get_template(template).render(views=VIEWS, **context),
            status_code=http_status,
            headers=HEADERS,
        )

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":  # no information: the CSRF token decides
            return True
        return origin == str(request.base_url).rstrip("/")

    async def form(request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _FORM_LIMIT:
                raise InvalidRequest("the form is too large")
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {k: v[0] for k, v in fields.items() if v}

    def signed_in(request: Request) -> Viewer | None:
        try:
            viewer = data.viewer(request.cookies.get(SESSION_COOKIE))
        except Unauthenticated:
            return None
        data.sync_targets()  # new certificates' targets, once per request
        return viewer

    def to_sign_in() -> RedirectResponse:
        return RedirectResponse("/dashboard/sign-in", status_code=303, headers=HEADERS)

    # -- sign-in and sign-out ---------------------------------------------------------

    def sign_in_page(
        request: Request, *, error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        response = html("dashboard_signin.html", status, csrf=token, error=error, view="sign-in")
        response.set_cookie(
            CSRF_COOKIE,
            token,
            max_age=600,
            path="/dashboard",
            secure=secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    @app.get("/dashboard/sign-in", include_in_schema=False)
    def dashboard_sign_in_form(request: Request) -> Response:
        if signed_in(request) is not None:
            return RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
        return sign_in_page(request)

    @app.post("/dashboard/sign-in", include_in_schema=False)
    async def dashboard_sign_in(request: Request) -> Response:
        fields = await form(request)
        cookie = request.cookies.get(CSRF_COOKIE)
        if (
            not same_origin(request)
            or not cookie
            or not secrets.compare_digest(cookie, fields.get("csrf", ""))
        ):
            return sign_in_page(
                request, error="The form expired or came from another site: try again.", status=403
            )
        try:
            caller = await svc.authorize(
                fields.get("api_key", "").strip() or None,
                ip=ip_of(request),
                endpoint="POST /dashboard/sign-in",
            )
        except RateLimited:
            return sign_in_page(request, error="Too many attempts: wait a minute.", status=429)
        except Unauthenticated as exc:
            return sign_in_page(request, error=f"Not signed in: {exc.message}", status=401)
        sid, _viewer = data.open_session(caller)
        response = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/dashboard",
            secure=secure(request),
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(CSRF_COOKIE, path="/dashboard")
        return response

    @app.post("/dashboard/sign-out", include_in_schema=False)
    async def dashboard_sign_out(request: Request) -> Response:
        fields = await form(request)
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        if not same_origin(request) or not data.csrf_ok(viewer, fields.get("csrf")):
            return html(
                "dashboard_error.html",
                403,
                viewer=viewer,
                view="",
                message="The form came from another site.",
            )
        data.close_session(request.cookies[SESSION_COOKIE])
        response = to_sign_in()
        response.delete_cookie(
            SESSION_COOKIE,
            path="/dashboard",
            secure=secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    # -- views ----------------------------------------------------------------------------

    def query(request: Request, name: str, limit: int = 200) -> str | None:
        value = request.query_params.get(name, "").strip()
        return value[:limit] or None

    def page_number(request: Request) -> int:
        raw = request.query_params.get("page", "1")
        return int(raw) if raw.isdigit() and 0 < len(raw) < 8 else 1

    def filters_of(request: Request) -> CertFilters:
        return CertFilters(
            standard=query(request, "standard", 64),
            bucket=query(request, "status", 32),
            system=query(request, "system", 32),
            query=query(request, "q"),
        )

    def kept_filters(request: Request) -> dict[str, str]:
        return {k: v for k in ("standard", "status", "system", "q") if (v := query(request, k))}

    def pages(path: str, kept: dict[str, str], page: int, count: int) -> dict[str, Any]:
        return {
            "page": page,
            "pages": count,
            "prev_url": f"{path}?{urlencode({**kept, 'page': page - 1})}" if page > 1 else None,
            "next_url": f"{path}?{urlencode({**kept, 'page': page + 1})}" if page < count else None,
        }

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_overview(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        summary = data.summary(viewer)
        counts = coverage.counts(viewer)
        gaps, gap_count, _page = coverage.page(viewer, "gap", 1, 10)
        return html(
            "dashboard_overview.html",
            viewer=viewer,
            view="overview",
            total=summary.total,
            counts=summary.buckets,
            buckets=BUCKETS,
            expiring=sum(summary.buckets[b] for b in ("expiring_30", "expiring_60", "expiring_90")),
            standards=summary.by_standard,
            standards_svg=stacked_svg(
                "Certificates by standard and status",
                [Bar(s, c) for s, c in summary.by_standard.items()],
            ),
            issuance_svg=bars_svg(
                "Certificates issued per day, last 30 days", data.issuance(viewer)
            ),
            scanned=sum(counts.values()),
            gaps=gaps,
            gap_count=gap_count,
            anomalies=data.anomalies(viewer),
        )

    @app.get("/dashboard/certificates", include_in_schema=False)
    def dashboard_certificates(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        filters = filters_of(request)
        rows, matching, page = data.certificate_page(
            viewer, filters, page_number(request), PAGE_SIZE
        )
        summary = data.summary(viewer)
        kept = kept_filters(request)
        return html(
            "dashboard_certificates.html",
            viewer=viewer,
            view="certificates",
            rows=rows,
            matching=matching,
            total=summary.total,
            filters=kept,
            standards=list(summary.by_standard),
            systems=[s for s in summary.by_system if s != "-"],
            statuses=[*BUCKETS, "expiring"],
            csv_url=f"/dashboard/certificates.csv?{urlencode(kept)}",
            oscal_url=f"/dashboard/certificates.oscal.json?{urlencode(kept)}",
            **pages("/dashboard/certificates", kept, page, page_count(matching, PAGE_SIZE)),
        )

    @app.get("/dashboard/certificates.csv", include_in_schema=False)
    def dashboard_certificates_csv(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        rows = data.all_certificates(viewer, filters_of(request))
        return _download(certificates_csv(rows, cert_base(request)), "certificates.csv")

    @app.get("/dashboard/certificates.oscal.json", include_in_schema=False)
    def dashboard_certificates_oscal(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        rows = data.all_certificates(viewer, filters_of(request))
        oscal = certificates_oscal(rows, cert_base(request), now(cfg))
        return _download(oscal, "certificates.oscal.json")

    @app.get("/dashboard/stores", include_in_schema=False)
    def dashboard_stores(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        systems = data.summary(viewer).by_system
        targets, total, page = data.targets_page(viewer, page_number(request), PAGE_SIZE)
        return html(
            "dashboard_stores.html",
            viewer=viewer,
            view="stores",
            systems=systems,
            buckets=BUCKETS,
            systems_svg=stacked_svg(
                "Certificates by store and status", [Bar(s, c) for s, c in systems.items()]
            ),
            targets=targets,
            target_count=total,
            **pages("/dashboard/stores", {}, page, page_count(total, PAGE_SIZE)),
        )

    def status_of(request: Request) -> str | None:
        return query(request, "status", 32)

    @app.get("/dashboard/coverage", include_in_schema=False)
    def dashboard_coverage(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        status = status_of(request)
        findings, matching, page = coverage.page(viewer, status, page_number(request), PAGE_SIZE)
        counts = coverage.counts(viewer)
        kept = {"status": status} if status else {}
        return html(
            "dashboard_coverage.html",
            viewer=viewer,
            view="coverage",
            findings=findings,
            total=sum(counts.values()),
            gaps=sum(n for s, n in counts.items() if s not in COVERED),
            counts=dict(sorted(counts.items())),
            status=status,
            csv_url=f"/dashboard/coverage.csv?{urlencode(kept)}",
            oscal_url=f"/dashboard/coverage.oscal.json?{urlencode(kept)}",
            **pages("/dashboard/coverage", kept, page, page_count(matching, PAGE_SIZE)),
        )

    @app.get("/dashboard/coverage.csv", include_in_schema=False)
    def dashboard_coverage_csv(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        findings = coverage.all(viewer, status_of(request))
        return _download(coverage_csv(findings, cert_base(request)), "coverage.csv")

    @app.get("/dashboard/coverage.oscal.json", include_in_schema=False)
    def dashboard_coverage_oscal(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        findings = coverage.all(viewer, status_of(request))
        return _download(
            coverage_oscal(findings, cert_base(request), now(cfg)), "coverage.oscal.json"
        )

    @app.get("/dashboard/anomalies", include_in_schema=False)
    def dashboard_anomalies(request: Request) -> Response:
        viewer = signed_in(request)
        if viewer is None:
            return to_sign_in()
        changed = [
            *coverage.page(viewer, "drifted", 1, 200)[0],
            *coverage.page(viewer, "invalid", 1, 200)[0],
        ]
        return html(
            "dashboard_anomalies.html",
            viewer=viewer,
            view="anomalies",
            anomalies=data.anomalies(viewer),
            changed=changed,
            threshold=cfg.anomaly_threshold_24h,
        )

    # -- the scans' API ---------------------------------------------------------------------

    @app.post("/api/scans", tags=["coverage"], status_code=201)
    async def submit_scan(request: Request) -> Response:
        """Record a coverage scan's result (``passgeni scan --submit``): store references and
        statuses only, never a value. Team keys submit for their team."""
        caller = await principal(request)
        body = await json_body(request)
        receipt = coverage.record(caller, body)
        return Response(dumps(receipt), status_code=201, media_type="application/json")

    return data
