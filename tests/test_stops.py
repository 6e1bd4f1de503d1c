"""A model prompted with plain turns ends its answer where it starts writing the user's next turn."""

from app.llm.stops import StopMatcher


def feed_all(pieces, stops=("\nUser:",)):
    matcher = StopMatcher(stops)
    shown = []
    for piece in pieces:
        shown.append(matcher.feed(piece))
        if matcher.stopped:
            break
    if not matcher.stopped:
        shown.append(matcher.flush())
    return "".join(shown), matcher.stopped


def test_the_answer_ends_before_the_next_user_turn_even_cut_across_pieces():
    assert feed_all(["Paris.", "\n", "\nUs", "er: Et", " Rome ?"]) == ("Paris.\n", True)


def test_text_that_only_looks_like_the_start_of_a_stop_is_shown_in_the_end():
    assert feed_all(["Voir\n", "Usage", " ci-dessous"]) == ("Voir\nUsage ci-dessous", False)


def test_an_answer_ending_on_part_of_a_stop_keeps_it():
    assert feed_all(["Fin\nUs"]) == ("Fin\nUs", False)


def test_without_stops_every_piece_passes_at_once():
    matcher = StopMatcher(())
    assert matcher.feed("\nUser: x") == "\nUser: x" and not matcher.stopped
