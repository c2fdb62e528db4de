"""Friends' SLIP-39 shares and passphrases: any k of n rebuild the secret, fewer or
mixed sets are refused with one line that quotes no words; generated passphrases
are strong, weak ones are refused unless allowed."""

from __future__ import annotations

import itertools

import pytest

from veil.formats import recovery_shares as rs
from veil.formats.recovery_blob import RecoveryError
from veil.services.recovery import passphrase


def test_any_k_of_n_rebuild_the_secret() -> None:
    secret, mnemonics = rs.split(3, 5)
    assert len(mnemonics) == 5 and len(secret) == 32
    for chosen in itertools.combinations(mnemonics, 3):
        assert rs.combine(list(chosen)) == secret
    assert rs.combine(mnemonics) == secret  # more than k is fine


def test_share_files_have_one_size_and_read_back() -> None:
    _, mnemonics = rs.split(2, 3)
    texts = [rs.share_file_text(m) for m in mnemonics]
    assert {len(t.encode()) for t in texts} == {rs.SHARE_FILE_BYTES}
    assert rs.combine(texts[:2]) == rs.combine([texts[2].upper(), texts[0]])


def test_bad_share_sets_each_one_line_without_words() -> None:
    _, mine = rs.split(2, 3)
    _, other = rs.split(2, 3)
    cases = {
        "2 shares are needed to open this blob; 1 given": [mine[0]],
        "come from different sets": [mine[0], other[1]],
        "is not a valid share": [mine[0], mine[1].replace(mine[1].split()[4], "zzzz", 1)],
        "no share was given": ["  "],
    }
    cases["2 shares are needed"] = [mine[0], mine[0]]  # the same share twice counts once
    for message, shares in cases.items():
        with pytest.raises(RecoveryError, match=message) as info:
            rs.combine(shares)
        text = str(info.value) + (info.value.hint or "")
        assert "\n" not in text
        words = mine[0].split()  # no three words of a share in a row (single words
        # such as "academic" or "order" may be English as well as SLIP-39)
        assert not any(" ".join(words[i : i + 3]) in text for i in range(len(words) - 2))


def test_friends_option() -> None:
    assert rs.parse_friends("3-of-5") == (3, 5)
    for bad in ("3of5", "4-of-3", "0-of-2", "2-of-17", "a-of-b"):
        with pytest.raises(RecoveryError, match="--friends"):
            rs.parse_friends(bad)


def test_generated_passphrases_are_strong_and_weak_ones_refused() -> None:
    made = {passphrase.generate() for _ in range(20)}
    assert len(made) == 20
    for p in made:
        assert len(p.split()) >= 6
        assert passphrase.rate(p).strong
    assert passphrase.generated_bits() > 77
    for weak in ("password123", "Tr0ub4dor&3", "correct horse"):
        with pytest.raises(RecoveryError, match="too weak"):
            passphrase.require_strong(weak, weak_ok=False)
        assert not passphrase.require_strong(weak, weak_ok=True).strong
    with pytest.raises(RecoveryError, match="empty"):
        passphrase.require_strong("", weak_ok=True)
