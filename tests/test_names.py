"""Names, tags, aliases and references: matched whole, ASCII digits only, one clear line when wrong.

Before: ``re.match`` with ``$`` let ``"pima\\n"`` through (a folder ``pima\\n`` on disk), ``"pima:\\u0661"``
(an Arabic-Indic one) resolved to ``pima:1``, and ``pima:99999999999999999999999`` raised an
unexpected OverflowError from the database driver.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main
from core.errors import InvalidParameterError
from core.refs import MAX_VERSION, check_label, check_name, parse_ref
from tests.portable_support import trained


@pytest.mark.parametrize("name", ["pima\n", "pima\r", "pima\n\n", "\npima", "pi\nma", "pima ", "p/ima", "pi..ma", ""])
def test_a_name_is_matched_whole(name):
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        check_name(name)


@pytest.mark.parametrize("label", ["prod\n", "prod\r\n", "pro d", "1prod", "prod/x", "a" * 65])
def test_tags_and_aliases_are_matched_whole(label):
    with pytest.raises(InvalidParameterError, match="Invalid alias"):
        check_label(label, "alias")


def test_good_names_and_labels_still_pass():
    assert check_name("pima-v2.final_1") == "pima-v2.final_1"
    assert check_label("production", "alias") == "production"
    assert parse_ref("pima:12").version == 12 and parse_ref("pima@prod").alias == "prod"


@pytest.mark.parametrize(
    "ref",
    ["pima:\u0661", "pima:\u0661\u0662", "pima:\u06f3", "pima:\uff11", "pima:\u00b2", "pima:+1", "pima: 1", "pima:1\n"],
)
def test_a_version_is_ascii_digits_only(ref):
    with pytest.raises(InvalidParameterError, match="the version must be a whole number"):
        parse_ref(ref)


@pytest.mark.parametrize("version", ["99999999999999999999999", str(2**63), "0", "00"])
def test_a_version_is_within_a_64_bit_range(version):
    with pytest.raises(InvalidParameterError, match="the version must be a whole number"):
        parse_ref(f"pima:{version}")


def test_the_largest_version_parses():
    assert parse_ref(f"pima:{MAX_VERSION}").version == MAX_VERSION == 2**63 - 1


def test_a_name_with_a_trailing_newline_makes_no_folder(store):
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        store.save_trained(trained("builtin:iris", "logistic_regression"), "pima\n")
    assert store.count() == 0
    assert not any(p.name.startswith("pima") for p in Path(store.location).iterdir())


def test_an_alias_with_a_trailing_newline_is_refused(store):
    store.save_trained(trained("builtin:iris", "logistic_regression"), "pima")
    with pytest.raises(InvalidParameterError, match="Invalid alias"):
        store.set_alias("pima:1", "production\n")
    assert store.get("pima:1")["aliases"] == []


@pytest.mark.parametrize(
    "ref", ["pima:\u0661", "pima:99999999999999999999999", "pima\n", "pima@prod\n", f"pima:{2**63}", "pima:1\n"]
)
def test_the_cli_gives_one_clear_line_for_a_bad_reference(capsys, store, ref):
    store.save_trained(trained("builtin:iris", "logistic_regression"), "pima")
    for argv in (["show", ref], ["evaluate", ref], ["env", ref], ["alias", ref, "production"]):
        assert main([*argv, "--store", store.location]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("error: Invalid "), err
        assert "unexpected" not in err
    assert store.get("pima:1")["aliases"] == []
