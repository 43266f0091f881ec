"""The dashboard at ``/``, the about page and the health check."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from api.deps import PageUserDep, SessionDep, SettingsDep
from gridmap.maps.dashboard import home_page
from gridmap.territory.service import attributions, get_city, layer_counts, postgis_version

router = APIRouter()


@router.get("/api/v1/health", tags=["site"])
def health(session: SessionDep) -> dict[str, str]:
    """Check that the API reaches its database."""
    return {"status": "ok", "postgis": postgis_version(session=session)}


def layer_link(name: str) -> str:
    return "/api/v1/departments" if name == "department" else f"/api/v1/layers/{name}?limit=100"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(session: SessionDep, settings: SettingsDep, user: PageUserDep) -> HTMLResponse:
    """Serve the supervisor's map dashboard, or the log-in screen to a browser without a session."""
    page = home_page(session=session, settings=settings.maps, logged_in=user is not None)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/about", response_class=HTMLResponse, include_in_schema=False)
def about(session: SessionDep) -> str:
    """Show the city, its layers with their row counts, and the data sources' attribution."""
    city = get_city(session=session)
    title = f"{city.name} · {city.name_en}" if city else "gridmap (no city loaded yet: run `gridmap demo load`)"
    rows = "".join(
        f'<tr><td><a href="{layer_link(name)}">{name}</a></td><td>{count:,}</td></tr>'
        for name, count in layer_counts(session=session).items()
    )
    credits = "".join(f"<li>{escape(line)}</li>" for line in attributions(session=session))
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>gridmap · {escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
td{{padding:.2rem 1rem .2rem 0}}</style></head><body>
<h1>gridmap · {escape(title)}</h1>
<p>数字城管 grid management. The supervisors' map dashboard is at <a href="/">/</a> (指挥中心). API: <a href="/docs">/docs</a> (OpenAPI).
Inspectors report from their phones on <a href="/report">/report</a> (监督员上报).</p>
<table><tr><th>layer</th><th>rows</th></tr>{rows}</table>
<p>The layers' data opens once you are logged in (登录后可查看图层数据): on <a href="/">/</a> in this browser, or
with a bearer token from <code>POST /api/v1/auth/token</code>.</p>
<h2>数据来源 · Data sources</h2><ul>{credits}</ul></body></html>"""
