"""Responsibility rules: the most specific rule wins, deterministically."""

from sqlalchemy import text

from gridmap.departments.service import matching_rules


def district_id(session, code: str) -> int:
    return session.execute(text("SELECT id FROM district WHERE code = :c"), {"c": code}).scalar_one()


def winner(session, **kwargs):
    return matching_rules(session=session, **kwargs)[0]


def test_a_minor_class_rule_beats_the_catch_all(session):
    rule = winner(session, case_type="event", class_code="0102", area_class="B")
    assert (rule.code, rule.target) == ("E-0102", "street_office")
    assert [r.code for r in matching_rules(session=session, case_type="event", class_code="0102")][-1] == "E-ANY"


def test_area_class_makes_a_rule_more_specific(session):
    rule = winner(session, case_type="event", class_code="0102", area_class="A")
    assert (rule.code, rule.department_code) == ("E-0102-A", "HW")


def test_road_grade_and_district_qualify(session):
    assert winner(session, case_type="event", class_code="0104", road_grade="special").department_code == "HW"
    assert winner(session, case_type="event", class_code="0104", road_grade="grade3").target == "road_cleaning"
    xinyi = district_id(session, "630020")
    assert winner(session, case_type="event", class_code="0505", district_id=xinyi).department_code == "ZF"
    assert winner(session, case_type="event", class_code="0505", district_id=district_id(session, "630010")).department_code == "JT"


def test_a_major_class_rule_applies_to_its_minor_classes(session):
    session.execute(text("DELETE FROM responsibility_rule WHERE code = 'E-0511'"))
    assert winner(session, case_type="event", class_code="0511", area_class="C").code == "E-05-C"
    assert winner(session, case_type="event", class_code="0511", area_class="B").code == "E-ANY"


def test_component_rules_name_the_competent_department(session):
    rule = winner(session, case_type="component", class_code="0118")
    assert (rule.target, rule.department_code) == ("department", "LD")
