"""The HTML around the dashboard's map (log-in, headline, filters, case table, action form, legend, credits)
and the log-in page. zh-CN first: each text carries its English in ``data-en`` for the language switch."""

from __future__ import annotations

from html import escape

from gridmap.maps.style import BOUNDARIES, COMPONENT_MAJORS, LIGHTS, ROAD_GRADES, choropleth_labels

COMPONENT_MAJOR_NAMES = {"01": ("公用设施", "Public utilities"), "02": ("道路交通", "Roads and traffic"),
                         "03": ("市容环境", "City appearance"), "04": ("园林绿化", "Landscaping"),
                         "05": ("房屋土地", "Buildings and land"), "06": ("其他设施", "Other facilities")}


def t(zh: str, en: str, tag: str = "span", **attributes: str) -> str:
    """Return ``<tag data-en="en">zh</tag>``: Chinese shown first, English on the switch."""
    extra = "".join(f' {name.rstrip("_").replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    return f'<{tag}{extra} data-en="{escape(en)}">{escape(zh)}</{tag}>'


def option(value: str, zh: str, en: str | None = None) -> str:
    english = f' data-en="{escape(en)}"' if en else ""
    return f'<option value="{escape(value)}"{english}>{escape(zh)}</option>'


def login_form(visible: bool) -> str:
    """The log-in box: user name, password, and where the error goes."""
    hidden = "" if visible else " hidden"
    return f"""<div id="login" class="gm-login"{hidden}><form id="login-form" class="gm-card" autocomplete="on">
<h2>{t("登录", "Log in")}</h2>
<label for="login-user">{t("用户名", "User name")}</label><input id="login-user" name="username" autocomplete="username" required>
<label for="login-password">{t("密码", "Password")}</label><input id="login-password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login-submit">{t("登录", "Log in")}</button>
<p id="login-error" class="gm-error" role="alert"></p></form></div>"""


def top_bar(context: dict) -> str:
    city = context["city"]
    return f"""<header id="gm-top">
<h1>{t("数字城管指挥中心", "City management command centre")} · <span>{escape(city["name"])}</span></h1>
<section id="headline" aria-label="headline">
<div><b id="h-reports">–</b>{t("今日上报", "reported today")}</div>
<div><b id="h-filed">–</b>{t("今日立案", "filed today")}</div>
<div><b id="h-dispatched">–</b>{t("今日派遣", "dispatched today")}</div>
<div><b id="h-open">–</b>{t("在办", "open")}</div>
<div class="late"><b id="h-overdue">–</b>{t("超期", "overdue")}</div>
<div><b id="h-rate">–</b>{t("本月按期处置率", "on time this month")}</div>
<ol id="h-late" title="overdue by department"></ol></section>
<div id="gm-user"><span id="live" title="live"></span><span id="who"></span>
<button type="button" id="lang" title="English / 中文">EN</button>
<button type="button" id="logout">{t("退出", "Log out")}</button></div></header>"""


def filters(context: dict) -> str:
    statuses = "".join(option(code, term["zh"], term["en"]) for code, term in context["statuses"].items())
    classes = "".join(
        f'<optgroup label="{label}">' + "".join(
            option(c["code"], f'{c["code"]} {c["name"]}', f'{c["code"]} {c["name_en"]}')
            for c in context["classes"] if c["case_type"] == case_type) + "</optgroup>"
        for case_type, label in (("event", "事件 events"), ("component", "部件 components")))
    departments = "".join(option(d["code"], f'{d["code"]} {d["name"]}', f'{d["code"]} {d["name_en"] or d["name"]}')
                          for d in context["departments"])
    districts = "".join(option(d["code"], d["name"]) for d in context["districts"])
    streets = "".join(option(s["code"], s["name"]) for s in context["streets"])
    street_hidden = "" if context["streets"] else " hidden"
    return f"""<form id="filters" class="gm-card" aria-label="filters"><h2>{t("筛选", "Filters")}</h2>
<label>{t("状态", "Status")}<select id="f-status">{option("", "在办（未结案）", "open (not closed)")}{option("all", "全部", "all")}{statuses}</select></label>
<label>{t("灯色", "Light")}<select id="f-light">{option("", "全部", "all")}{option("green", "绿灯 正常", "green: on time")}{option("yellow", "黄灯 预警", "yellow: due soon")}{option("red", "红灯 超时", "red: overdue")}</select></label>
<label>{t("类别", "Class")}<select id="f-class">{option("", "全部", "all")}{classes}</select></label>
<label>{t("责任部门", "Department")}<select id="f-department">{option("", "全部", "all")}{departments}</select></label>
<label>{t("区", "District")}<select id="f-district">{option("", "全部", "all")}{districts}</select></label>
<label{street_hidden}>{t("街道", "Street")}<select id="f-street">{option("", "全部", "all")}{streets}</select></label>
<label>{t("上报自", "Reported from")}<input id="f-from" type="date"></label>
<label>{t("至", "to")}<input id="f-to" type="date"></label>
<label>{t("网格着色", "Grids show")}<select id="f-metric">{option("open", "在办案件", "open cases")}{option("overdue", "超期案件", "overdue cases")}{option("cases", "期间案件数", "cases in the period")}</select></label>
<button type="reset" id="f-reset">{t("清除", "Clear")}</button></form>"""


def case_table() -> str:
    columns = [("number", "编号", "Number"), ("class", "类别", "Class"), ("status", "状态", "Status"),
               (None, "灯", "Light"), ("department", "部门", "Dept."), ("reported_at", "上报", "Reported"),
               ("deadline", "时限", "Due"), (None, "操作", "Actions")]
    heads = "".join(f'<th data-sort="{key}" tabindex="0" aria-sort="none">{t(zh, en)}</th>' if key else
                    f"<th>{t(zh, en)}</th>" for key, zh, en in columns)
    return f"""<section id="cases" class="gm-card" aria-label="cases"><h2>{t("案件", "Cases")} <small id="table-total"></small></h2>
<table id="case-table"><thead><tr>{heads}</tr></thead><tbody></tbody></table>
<nav id="pager"><button type="button" id="page-prev">‹</button><span id="page-info"></span><button type="button" id="page-next">›</button></nav></section>"""


def action_dialog() -> str:
    return f"""<dialog id="action-dialog"><form id="action-form" method="dialog">
<h3 id="ad-title"></h3><p id="ad-case"></p><div id="ad-fields"></div><p id="ad-error" class="gm-error" role="alert"></p>
<menu><button type="submit" id="ad-ok" value="ok">{t("确定", "OK")}</button>
<button type="button" id="ad-cancel" value="cancel">{t("取消", "Cancel")}</button></menu></form></dialog>"""


def credits(context: dict) -> str:
    lines = " · ".join(escape(line) for line in context["attribution"])
    return f'<footer id="gm-credits">{t("数据来源", "Data")}: {lines} · <a href="/about">{t("关于", "About")}</a></footer>'


def legend(context: dict) -> str:
    """The legend's HTML: lights, the grid choropleth, road grades, component classes, boundaries."""
    lights = "".join(f'<li><i class="dot" style="background:{colour}"></i>{t(zh, en)}</li>'
                     for colour, zh, en in LIGHTS.values())
    grades = {g["code"]: g for g in context["road_grades"]}
    roads = "".join(f'<li><i class="line" style="background:{colour};height:{max(2, weight):.0f}px"></i>'
                    f'{t(grades.get(code, {}).get("name", code), grades.get(code, {}).get("name_en", code))}</li>'
                    for code, (colour, weight) in ROAD_GRADES.items())
    choropleth = "".join(f'<li><i class="box" style="background:{colour}"></i>{escape(label)}</li>'
                         for label, colour in choropleth_labels())
    majors = "".join(f'<li><i class="dot" style="background:{colour}"></i>{t(*COMPONENT_MAJOR_NAMES[code])}</li>'
                     for code, colour in COMPONENT_MAJORS.items())
    bounds = "".join(f'<li><i class="line" style="background:{style["color"]};height:2px"></i>{t(zh, en)}</li>'
                     for key, zh, en in (("district", "区界", "district"), ("community", "社区界", "community"),
                                         ("duty_grid", "责任网格", "duty grid"))
                     for style in [BOUNDARIES[key]])
    return f"""<details><summary>{t("图例", "Legend")}</summary>
<h4>{t("案件灯色", "Cases")}</h4><ul class="row">{lights}</ul>
<h4 id="legend-metric">{t("网格案件数", "Cases per grid")}</h4><ul class="row">{choropleth}</ul>
<h4>{t("道路等级", "Road grades")}</h4><ul class="cols">{roads}</ul>
<h4>{t("部件大类", "Components")}</h4><ul class="cols">{majors}</ul><h4>{t("边界", "Boundaries")}</h4><ul class="row">{bounds}</ul></details>"""


def login_page(context: dict, stylesheet: str, script: str) -> str:
    """The page a visitor without a session sees: log in, then the dashboard loads."""
    city = escape(context["city"]["name"])
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>数字城管指挥中心 · {city}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{stylesheet}"><script src="{script}"></script></head>
<body class="gm-login-page" data-page="login"><header id="gm-top"><h1>{t("数字城管指挥中心", "City management command centre")} · {city}</h1>
<div id="gm-user"><button type="button" id="lang" title="English / 中文">EN</button></div></header>
{login_form(visible=True)}{credits(context)}
<script>GridmapDashboard.startLogin();</script></body></html>"""
