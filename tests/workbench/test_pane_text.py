"""Small pieces of the panes drawn at 80 columns: the confusion matrix's column codes, the step axis."""

from __future__ import annotations

from workbench.widgets.classifier_query import short_codes

LANGUAGES = ("Arabic Chinese Czech Dutch English French German Greek Irish Italian Japanese Korean Polish "
             "Portuguese Russian Scottish Spanish Vietnamese").split()


def test_codes_tell_every_language_apart_at_two_and_three_letters():
    for length in (2, 3):
        codes = short_codes(LANGUAGES, length)
        assert len(set(codes)) == len(LANGUAGES) and all(len(c) == length for c in codes)
    two = dict(zip(LANGUAGES, short_codes(LANGUAGES, 2)))
    assert (two["Chinese"], two["Czech"], two["Polish"], two["Portuguese"]) == ("Ch", "Cz", "Po", "Pr")
    assert short_codes(LANGUAGES, 3)[:3] == ["Ara", "Chi", "Cze"]


def test_the_step_axis_is_labelled_with_whole_round_numbers():
    from workbench.widgets.figure import whole_ticks

    assert whole_ticks(1, 120, 5) == [20, 40, 60, 80, 100, 120]
    assert whole_ticks(3, 1282, 6) == [200, 400, 600, 800, 1000, 1200]
    assert whole_ticks(0, 7, 5) == [0, 2, 4, 6] and whole_ticks(5, 5) == [5]
    assert all(isinstance(t, int) for t in whole_ticks(1.0, 21.7, 4))
