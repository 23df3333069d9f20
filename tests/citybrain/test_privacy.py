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
def test_the_first_cases(text: str, expected: str) -> None:
    assert mask_phones_in_text(text) == expected


# must mask: every way a caller's number is written
MASKED = [
    ("8613812345678", "*********5678"),
    ("+8613812345678", "+*********5678"),
    ("+86 138 1234 5678", "+** *** **** 5678"),
    ("0086-138-1234-5678", "****-***-****-5678"),
    ("86-13812345678", "**-*******5678"),
    ("手机:138 1234 5678。", "手机:*** **** 5678。"),
    ("请回电13812345678谢谢", "请回电*******5678谢谢"),
    ("(021)62345678", "(***)****5678"),
    ("0755 87654321", "**** ****4321"),
    ("+86 21 62345678", "+** ** ****5678"),
    ("座机62345678", "座机****5678"),
    ("联系电话：6234567", "联系电话：***4567"),
    ("tel 62345678", "tel ****5678"),
    ("+1 415 555 0199", "+* *** *** 0199"),
    ("13812345678,13912345678", "*******5678,*******5678"),
]
# must not touch: public service numbers, dates, tickets, serials, long ids
UNTOUCHED = [
    "客服 400-820-8820",
    "4008208820",
    "800-810-8888",
    "95588",
    "拨打12345热线",
    "工单 20261124000123",
    "2026-11-24 08:41:07",
    "20261124",
    "设备 SN13812345678",
    "WL-2026-0001",
    "身份证 310101199001011234",
    "订单号 9913812345678001",
    "62345678",  # a bare 8-digit number: a ticket as often as a phone
    "level 1381.2345678 m",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_every_form_of_a_callers_number_is_masked(text: str, expected: str) -> None:
    assert mask_phones_in_text(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_what_is_not_a_callers_number_is_left_alone(text: str) -> None:
    assert mask_phones_in_text(text) == text


def test_mask_phone_keeps_separators() -> None:
    assert mask_phone("138 1234 5678") == "*** **** 5678"


def test_mask_value_walks_nested_structures() -> None:
    value = {"caller": "13912345678", "notes": ["call back 13912345678"], "n": 3}
    assert mask_value(value) == {
        "caller": "*******5678",
        "notes": ["call back *******5678"],
        "n": 3,
    }
