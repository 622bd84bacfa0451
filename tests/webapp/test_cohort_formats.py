"""Number formats of the cohort and comparison pages."""

from django.template import Context, Template

from webapp.analysis.templatetags.cohort import pvalue, sig


def test_significant_digits_and_p_values():
    assert sig(0.012345) == "0.0123"
    assert sig(12.345, 2) == "12"
    assert pvalue(0.0004) == "< 0.001"
    assert pvalue(0.04567) == "0.046"


def test_a_figure_the_stored_record_lacks_prints_a_dash_not_an_error():
    assert sig(None) == "—" and pvalue(None) == "—"
    page = Template("{% load cohort %}{{ figures.exposure_difference|sig:2 }} {{ figures.p|pvalue }}")
    assert page.render(Context({"figures": {}})) == "— —"
