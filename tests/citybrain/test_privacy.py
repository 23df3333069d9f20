import pytest

from citybrain.privacy import mask_phone, mask_phones_in_text, mask_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "*******5678"),
        ("来电 13812345678 反映", "来电 *******5678 反映"),
        ("+86 138-1234-5678", "+** ***-****-5678"),
        ("座机 021-62345678", "座机 ***-****5678"),
        ("+1 415 555 0199", "+* *** *** 0199"),
        ("ticket 20261124 at 09:41", "ticket 20261124 at 09:41"),
        ("no phone here", "no phone here"),
    ],
)
def test_phone_numbers_are_masked_but_the_last_four_digits(text: str, expected: str) -> None:
    assert mask_phones_in_text(text) == expected


def test_mask_phone_keeps_separators() -> None:
    assert mask_phone("138 1234 5678") == "*** **** 5678"


def test_mask_value_walks_nested_structures() -> None:
    value = {"caller": "13912345678", "notes": ["call back 13912345678"], "n": 3}
    assert mask_value(value) == {
        "caller": "*******5678",
        "notes": ["call back *******5678"],
        "n": 3,
    }
