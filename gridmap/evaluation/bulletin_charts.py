"""The monthly bulletin's page: trend charts as inline SVG (matplotlib), the folium map of cases per unit grid
and the HTML (``templates/bulletin.html.j2``), with every script and stylesheet inlined so the page opens
offline from a file or an e-mail.

Text in the SVGs stays text (``svg.fonttype: none``): it is small, searchable and drawn by the reader's own
fonts; the CJK font here (WenQuanYi Micro Hei from ``scripts/system-deps.sh``, else Noto/Source Han …) only
measures it for the layout. The map reuses the dashboard's asset table (:mod:`gridmap.maps.assets`): folium's
assets are pointed at the npm packages, whose files are then read from ``node_modules`` and inlined.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import re
import warnings
from functools import lru_cache
from pathlib import Path

import pandas as pd

from gridmap.maps.assets import VENDOR, check_local, localise, require_folium
from gridmap.maps.style import BOUNDARIES, choropleth_labels

#: the checkout's npm packages (``package.json``); the bulletin reads Leaflet from here
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
#: CJK fonts for measuring chart text, in order of preference (families as fontconfig names them)
CJK_FAMILIES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
                "Microsoft YaHei", "PingFang SC", "SimHei")
CJK_FILES = ("wqy-microhei", "wqy-zenhei", "NotoSansCJK", "SourceHanSans", "msyh", "simhei")
#: case source → (zh, en, colour) in the monthly chart
SOURCES = {"inspector": ("监督员上报", "inspectors", "#2b6cb0"), "hotline": ("热线", "hotline", "#dd6b20"),
           "self_disposal": ("自行处置", "self-disposal", "#38a169"), "import": ("导入", "imported", "#718096")}
RATES = {"closure_rate": ("结案率", "closure rate", "#2b6cb0"),
         "on_time_rate": ("按期结案率", "on-time closure", "#c53030")}
CHART_RC = {"svg.fonttype": "none", "svg.hashsalt": "gridmap-bulletin", "font.size": 9,
            "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10}
MAP_HEIGHT = "120mm"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the headline cards: key, zh-CN, English, format, whether more is better (None: neither)
HEADLINE_CARDS = [("reported", "上报案件", "cases reported", "count", None),
                  ("filed", "立案", "filed", "count", None), ("closed", "结案", "closed", "count", None),
                  ("closure_rate", "结案率", "closure rate", "rate", True),
                  ("on_time_rate", "按期结案率", "on-time closure rate", "rate", True),
                  ("overdue", "超期未处置", "overdue open cases", "count", False)]
#: the hot-spot table's columns from :func:`gridmap.evaluation.hotspots.hotspots` (shown when present)
HOTSPOT_COLUMNS = [("density_km2", "密度", "cases / km²", "decimal"),
                   ("gi_z", "Gi* z 值", "Gi* z-score", "decimal"),
                   ("gi_p", "p 值", "p-value", "p"), ("hotspot_zh", "热点判定", "Gi* class", "text")]
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")

_ASSET_TAG = re.compile(r"""<script\b[^>]*\bsrc="(?P<js>[^"]+)"[^>]*>\s*</script>"""
                        r"""|<link\b[^>]*\bhref="(?P<css>[^"]+)"[^>]*/?>""")
_CSS_URL = re.compile(r"""url\(\s*['"]?(?!data:|#)(?P<path>[^'")]+)['"]?\s*\)""")
_FONT_FAMILY = re.compile(r"font-family: ?[^;\"]*;? ?")
_FETCHES = re.compile(r"""<(?:script|link|img|iframe|source|object|embed)\b[^>]*\b(?:src|href|data)\s*=\s*"""
                      r"""["'](?!data:|#)"""
                      r"""|(?<![\w.])url\(\s*['"]?(?!data:|#)|@import""", re.IGNORECASE)
_SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?</script>", re.DOTALL | re.IGNORECASE)


class MissingAsset(RuntimeError):
    """A front-end file the bulletin inlines is not installed (``node_modules``)."""


@lru_cache(maxsize=1)
def cjk_family() -> list[str]:
    """Return the fonts that measure chart text: an installed CJK font first, registered if matplotlib's font
    cache predates its installation, then matplotlib's own (for Latin text and digits)."""
    from matplotlib import font_manager

    known = {font.name for font in font_manager.fontManager.ttflist}
    if not known.intersection(CJK_FAMILIES):
        for path in font_manager.findSystemFonts():
            if any(part in Path(path).name for part in CJK_FILES):
                font_manager.fontManager.addfont(path)
        known = {font.name for font in font_manager.fontManager.ttflist}
    return [name for name in CJK_FAMILIES if name in known] + ["DejaVu Sans"]


def _svg(figure) -> str:
    """Return ``figure`` as an inline ``<svg>`` element that scales with its container."""
    buffer = io.StringIO()
    with warnings.catch_warnings():  # without any CJK font the glyphs are only measured wrong, not lost
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buffer.getvalue()
    svg = _FONT_FAMILY.sub("", svg[svg.index("<svg"):])  # the page's font stack applies instead
    return re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1 width="100%" role="img"', svg, count=1)


def _figure(width_mm: float = 170, height_mm: float = 62):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_mm / 25.4, height_mm / 25.4))


def _context():
    import matplotlib

    return matplotlib.rc_context(CHART_RC | {"font.family": cjk_family()})


def cases_by_source_svg(trend: pd.DataFrame) -> str:
    """Stacked bars of cases reported per month by source (``trend``: one row per month label, one column per
    source in :data:`SOURCES`)."""
    from matplotlib.ticker import MaxNLocator

    with _context():
        figure = _figure()
        axes = figure.add_subplot()
        bottom = pd.Series(0, index=trend.index, dtype=float)
        for source, (zh, en, colour) in SOURCES.items():
            values = trend.get(source, pd.Series(0, index=trend.index)).astype(float)
            if values.sum() or source in ("inspector", "hotline"):
                axes.bar(trend.index, values, bottom=bottom, color=colour, label=f"{zh} {en}", width=0.6)
                bottom += values
        for x, total in enumerate(bottom):
            axes.annotate(f"{total:,.0f}", (x, total), ha="center", va="bottom", fontsize=8,
                          xytext=(0, 2), textcoords="offset points")
        axes.set_ylabel("案件数 cases")
        axes.set_ylim(0, max(1.0, bottom.max()) * 1.15)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(loc="upper left", ncols=4, frameon=False, fontsize=8)
        return _svg(figure)


def rates_svg(trend: pd.DataFrame) -> str:
    """Lines of 结案率 and 按期结案率 per month in % (gaps where a month had nothing due)."""
    with _context():
        figure = _figure()
        axes = figure.add_subplot()
        axes.set_xticks(range(len(trend)), list(trend.index))
        axes.set_xlim(-0.5, len(trend) - 0.5)
        for column, (zh, en, colour) in RATES.items():
            values = trend[column].astype(float) * 100
            axes.plot(range(len(trend)), values, marker="o", color=colour, label=f"{zh} {en}")
            for x, value in enumerate(values):
                if pd.notna(value):
                    axes.annotate(f"{value:.1f}", (x, value), ha="center", va="bottom", fontsize=7.5,
                                  xytext=(0, 4), textcoords="offset points", color=colour)
        axes.set_ylim(0, 109)
        axes.set_ylabel("%")
        axes.grid(axis="y", alpha=0.3)
        axes.legend(loc="lower left", ncols=2, frameon=False, fontsize=8)
        return _svg(figure)


def top_classes_svg(classes: pd.DataFrame) -> str:
    """Horizontal bars of the month's most frequent classes (``classes``: ``label`` and ``cases``)."""
    with _context():
        figure = _figure(height_mm=max(35.0, 7.0 * len(classes) + 12))
        axes = figure.add_subplot()
        ordered = classes.iloc[::-1]
        axes.barh(ordered["label"], ordered["cases"], color="#2b6cb0", height=0.6)
        for y, value in enumerate(ordered["cases"]):
            axes.annotate(f"{value:,}", (value, y), va="center", xytext=(3, 0), textcoords="offset points", fontsize=8)
        axes.set_xlabel("案件数 cases")
        axes.set_xlim(0, max(1, ordered["cases"].max()) * 1.12)
        return _svg(figure)


def render_bulletin(data: dict) -> str:
    """Return the bulletin's HTML: one document, every asset inlined.

    Parameters
    ----------
    data
        From :func:`gridmap.evaluation.bulletin.bulletin_data`.

    Raises
    ------
    MissingAsset
        Leaflet is not installed (``node_modules``), or the page would still fetch something.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    zone = data["timezone"]
    env.filters["fmt"] = _format
    env.filters["local"] = lambda at: at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if pd.notna(at) else "—"
    year, month = map(int, data["period"].label.split("-"))
    previous = data["previous"].label.split("-")
    layers = data["layers"]
    figures = {"sources": cases_by_source_svg(data["trend"]), "rates": rates_svg(data["trend"]),
               "classes": top_classes_svg(data["classes"]) if len(data["classes"]) else ""}
    html = env.get_template("bulletin.html.j2").render(
        **data, figures=figures, css=(TEMPLATES / "bulletin.css").read_text(encoding="utf-8"),
        map=grid_map(layers["grids"], layers["districts"], bounds=layers["bounds"], title="本月案件数 cases"),
        grid_count=len(layers["grids"]["features"]), headline_cards=HEADLINE_CARDS, sources=SOURCES,
        hotspot_columns=[c for c in HOTSPOT_COLUMNS if c[0] in data["hotspots"].columns], change=_change,
        month_zh=f"{year}年{month}月", month_en=f"{MONTHS_EN[month - 1]} {year}",
        previous_en=f"{MONTHS_EN[int(previous[1]) - 1]} {previous[0]}", zone=zone.key)
    return check_self_contained(html)


def _format(value, kind: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    if kind == "text":
        return str(value)
    if kind == "rate":
        return f"{value * 100:.1f}%"
    decimals = {"score": 1, "hours": 1, "decimal": 2, "p": 3}
    return f"{value:.{decimals[kind]}f}" if kind in decimals else f"{int(value):,}"


def _change(current, previous, kind: str, better: bool | None) -> str:
    """The change from the previous month, coloured when more (or less) is better."""
    if any(v is None or pd.isna(v) for v in (current, previous)):
        return ""
    delta = (current - previous) * (100 if kind == "rate" else 1)
    unit = " pp" if kind == "rate" else ""
    if abs(delta) < 0.05:
        return '<span class="delta same">持平 unchanged</span>'
    tone = "same" if better is None else "better" if (delta > 0) == better else "worse"
    shown = f"{delta:+.1f}" if kind == "rate" else f"{delta:+,.0f}"
    return f'<span class="delta {tone}">{"▲" if delta > 0 else "▼"} {shown}{unit}</span>'


def grid_map(grids: dict, districts: dict, *, bounds: list[list[float]], title: str) -> dict[str, str]:
    """Build the choropleth of cases per unit grid and return its parts, every asset inlined.

    Parameters
    ----------
    grids
        GeoJSON FeatureCollection (WGS84) of the grids with cases; properties ``code``, ``community``,
        ``cases`` and ``style`` (``fillColor`` and ``color`` of the grid's class: a grid of a few metres
        across still shows its class at the city's scale).
    districts
        GeoJSON of the district boundaries, drawn for orientation.
    bounds
        ``[[south, west], [north, east]]`` the map opens on.
    title
        The map's legend title.

    Returns
    -------
    dict
        ``head`` (styles and scripts for the page's ``<head>``), ``body`` (the map's ``<div>``) and
        ``script`` (the code that draws it, for the end of the page).
    """
    folium = require_folium()
    from gridmap.maps.elements import Legend

    m = folium.Map(location=[(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2],
                   tiles=None, zoom_start=12, control_scale=True, height=MAP_HEIGHT, zoom_snap=0.25)
    folium.GeoJson(districts, name="区界 districts", color=BOUNDARIES["district"]["color"], weight=1.5,
                   fill=False, interactive=False).add_to(m)
    if grids["features"]:
        folium.GeoJson(grids, name="单元网格 unit grids", weight=1, opacity=0.9, fill_opacity=0.85,
                       tooltip=folium.GeoJsonTooltip(["code", "community", "cases"],
                                                     aliases=["网格 grid", "社区 community", "案件 cases"])
                       ).add_to(m)
    legend = "".join(f'<li><i class="box" style="background:{colour}"></i>{label}</li>'
                     for label, colour in choropleth_labels())
    Legend(f"<h4>{title}</h4><ul>{legend}</ul>", position="bottomright").add_to(m)
    m.fit_bounds(bounds)
    figure = localise(m).get_root()
    figure.render()
    return {"head": inline_assets(figure.header.render()), "body": figure.html.render(),
            "script": figure.script.render()}


def inline_assets(html: str, node_modules: Path = NODE_MODULES) -> str:
    """Replace each ``<script src>``/``<link href>`` of a vendored npm file by the file's content (CSS images
    as ``data:`` URIs), so the page needs no server; raise :class:`MissingAsset` when a file is missing."""
    check_local(html)

    def inline(match: re.Match) -> str:
        url = match["js"] or match["css"]
        if not url.startswith(VENDOR + "/"):
            return match[0] if match["css"] and "stylesheet" not in match[0] else _refuse(url)
        path = node_modules / url.removeprefix(VENDOR + "/").split("?")[0]
        if not path.is_file():
            raise MissingAsset(f"{path} is missing: run `make setup` (or `npm ci`) to install the front-end "
                               "packages the bulletin inlines")
        text = path.read_text(encoding="utf-8")
        if match["js"]:
            return "<script>" + text.replace("</script", "<\\/script") + "</script>"
        return f"<style>{_CSS_URL.sub(lambda m: _data_url(path.parent / m['path']), text)}</style>"

    return _ASSET_TAG.sub(inline, html)


def _refuse(url: str) -> str:
    raise MissingAsset(f"the bulletin cannot inline {url}: only npm packages under {VENDOR} are known")


def _data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not path.is_file():
        raise MissingAsset(f"{path} (referenced by a stylesheet the bulletin inlines) is missing")
    return f"url(data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"


def check_self_contained(html: str) -> str:
    """Return ``html`` if it fetches nothing (no script, stylesheet, image or CSS ``url()`` outside ``data:``);
    raise :class:`MissingAsset` naming the first reference otherwise. Links (``<a href>``) are fine."""
    markup = _SCRIPT_BODY.sub(r"\1</script>", html)  # scripts' code is not markup (Leaflet's has getIconUrl()…)
    if match := _FETCHES.search(markup):
        start = max(0, match.start() - 60)
        raise MissingAsset(f"the bulletin would fetch something: …{markup[start:match.end() + 80]}…")
    return html
