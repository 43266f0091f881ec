"""Colours and weights of the dashboard's layers, one table each, shared by the map's style functions (sent
to the page as JSON) and its legend — so the legend always says what the map draws."""

from __future__ import annotations

#: traffic light of a case's current stage (绿灯 / 黄灯 / 红灯); closed cases and cases without a clock grey
LIGHTS = {
    "green": ("#1a9850", "正常", "on time"),
    "yellow": ("#f0b400", "预警", "due soon"),
    "red": ("#d7301f", "超时", "overdue"),
    "none": ("#4a6fa5", "无时限", "no clock"),
    "closed": ("#8c8c8c", "已结束", "closed"),
}

#: choropleth of unit grids: the lower bound of each class (the last is open-ended) and its fill colour
CHOROPLETH_BREAKS = (1, 2, 4, 8, 16)
CHOROPLETH_COLOURS = ("#fee8c8", "#fdbb84", "#fc8d59", "#e34a33", "#b30000")

#: road management grade (data/catalogue/road_grades.csv) → colour, line weight in pixels at zoom 15
ROAD_GRADES = {
    "special": ("#7a0177", 6.0),
    "grade1": ("#c51b8a", 5.0),
    "grade2": ("#f768a1", 4.0),
    "grade3": ("#6a51a3", 3.0),
    "grade4": ("#807dba", 2.0),
    "lane": ("#9e9ac8", 1.2),
}

#: component major class (first two digits of the class code) → colour
COMPONENT_MAJORS = {
    "01": "#1f78b4",  # 公用设施
    "02": "#33a02c",  # 道路交通
    "03": "#ff7f00",  # 市容环境
    "04": "#6a3d9a",  # 园林绿化
    "05": "#b15928",  # 房屋土地
    "06": "#737373",  # 其他设施
}

BOUNDARIES = {
    "district": {"color": "#243b53", "weight": 2.5, "fill": False, "dashArray": None},
    "street": {"color": "#486581", "weight": 1.8, "fill": False, "dashArray": "6 4"},
    "community": {"color": "#627d98", "weight": 1.0, "fill": False, "dashArray": "2 3"},
    "duty_grid": {"color": "#0b7285", "weight": 1.6, "fill": False},
}


def choropleth_labels() -> list[tuple[str, str]]:
    """Return (label, colour) per class of the grid choropleth: 1, 2–3, 4–7, 8–15, ≥ 16."""
    labels = []
    for i, (low, colour) in enumerate(zip(CHOROPLETH_BREAKS, CHOROPLETH_COLOURS)):
        high = CHOROPLETH_BREAKS[i + 1] - 1 if i + 1 < len(CHOROPLETH_BREAKS) else None
        labels.append((f"≥ {low}" if high is None else str(low) if high == low else f"{low}–{high}", colour))
    return labels


def palette() -> dict:
    """All the tables as JSON for the page's style functions."""
    return {"lights": {key: colour for key, (colour, _, _) in LIGHTS.items()},
            "choropleth": {"breaks": CHOROPLETH_BREAKS, "colours": CHOROPLETH_COLOURS},
            "roads": {code: {"color": colour, "weight": weight} for code, (colour, weight) in ROAD_GRADES.items()},
            "components": COMPONENT_MAJORS, "boundaries": BOUNDARIES}
