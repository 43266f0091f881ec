"""Evaluation 考核评价: KPIs per region, department and person, composite scores and bands (DOMAIN.md §7).

- :mod:`~gridmap.evaluation.periods` — periods (day, ISO week, month, quarter, year, range of days);
- :mod:`~gridmap.evaluation.definitions` — every KPI with its Chinese name and formula (docs/kpi.md);
- :mod:`~gridmap.evaluation.facts` — the narrow frames fetched from PostGIS;
- :mod:`~gridmap.evaluation.measures` — counts and rates in pandas, the one definition;
- :mod:`~gridmap.evaluation.scoring` — weights, scores, bands, ranks;
- :mod:`~gridmap.evaluation.service` — ``kpi(session=…, period="2026-10", by="department")``.
"""
