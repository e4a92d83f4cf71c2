"""Text safety gate: normalise, then match versioned multilingual term lists.

Matching strategy (what is compared with what, and why):

1. **Normalise** (:func:`normalize`): Unicode NFKC (full-width Latin and digits become ASCII,
   half-width katakana become full-width, ligatures split), case folding, zero-width and other
   format/control characters removed, Latin letters stripped of diacritics and combining marks
   ("pôrn", "s̶e̶x̶"), and Cyrillic/Greek look-alikes mapped to Latin inside words that mix scripts
   ("рorn" with a Cyrillic р). Genuine Cyrillic/Greek words are left alone.
2. **Latin-script terms** match whole words on the token sequence (tokens = runs of letters and
   digits). So "sex" matches "sex" but not Sussex, Essex or unisex; "rape" not grape or rapeseed;
   "cunt" not Scunthorpe. A trailing ``*`` in a term is a prefix match on its last word only.
   Multi-word terms match consecutive tokens whatever separates them ("kill-yourself").
3. **Leetspeak** is undone only inside words that mix letters and leet characters with at least
   as many letters as leet characters ("p0rn", "s3x", "$ex", "d!ck"), so "4 pack", "5 stars",
   "100%" and model numbers such as "53X" stay what they are.
4. **Spacing and punctuation tricks** ("s e x", "s.e.x", "p-o-r-n", "섹 스"): runs of two or
   more single-character tokens are joined and searched for terms as substrings of the joined
   run. Only runs of single characters are joined, so ordinary words never collapse into each
   other (the fully-collapsed text is never searched: that is where Scunthorpe lives).
5. **Han and kana terms** (Chinese, Japanese) match as substrings: these scripts have no spaces
   between words. Whitespace and obfuscating punctuation inside a sentence are removed first
   ("色 情", "色.情"); 。 、 and line breaks stay boundaries. Substrings can straddle words
   ("红色情人节" = 红色 + 情人节 contains 色情): such phrases are listed under ``allow`` and
   masked before matching. A word segmenter would do better; not needed for the seed lists.
6. **Hangul terms** (Korean) match as substrings of one space-separated word (particles attach:
   "자살을") but never across spaces ("여자 살림" does not contain 자살), plus the joined
   single-syllable runs of step 4. Compatibility jamo typed apart ("ㅅㅔㄱㅅㅡ") are composed into
   syllables first.

A verdict names the category and a rule id, never the matched term (verdicts reach logs that
other tenants can read).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

from tasks.safety.policy import Policy, load_policy
from tasks.safety.verdicts import TextMatch, TextVerdict

TERMS_DIR = Path(__file__).parent / "terms"

# --- normalisation ---------------------------------------------------------------------

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})  # fmt: skip
_LEET_CHARS = frozenset("0134578@$!|+")
# Cyrillic / Greek letters that look like Latin ones (applied only to mixed-script words).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ο": "o",
    "α": "a", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "ι": "i", "κ": "k", "χ": "x", "ε": "e",
})  # fmt: skip
_CONFUSABLE_KEYS = frozenset(chr(k) for k in _CONFUSABLES)


def _is_latin(ch: str) -> bool:
    return (ch.isascii() and ch.isalpha()) or ("LATIN" in unicodedata.name(ch, ""))


def _is_han_or_kana(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF  # hiragana, katakana
        or 0x31F0 <= o <= 0x31FF
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3FFFF
    )


def _is_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F


# Hangul compatibility jamo -> syllable composition ("ㅅㅔㄱㅅㅡ" -> "섹스").
_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"


def _compose_jamo(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _CHO and i + 1 < n and text[i + 1] in _JUNG:
            lead, vowel = _CHO.index(c), _JUNG.index(text[i + 1])
            tail = 0
            # a final consonant only if the next jamo does not start a new syllable
            if i + 2 < n and text[i + 2] in _JONG[1:] and not (i + 3 < n and text[i + 3] in _JUNG):
                tail = _JONG.index(text[i + 2])
            out.append(chr(0xAC00 + (lead * 21 + vowel) * 28 + tail))
            i += 3 if tail else 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _strip_latin_marks(text: str) -> str:
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Mn", "Me"):
            # combining mark: drop it after Latin letters/digits/spaces (s̶e̶x̶, zalgo); keep it
            # after other scripts (e.g. Devanagari vowel signs).
            if not out or out[-1].isascii():
                continue
            out.append(ch)
            continue
        if not ch.isascii() and _is_latin(ch):
            base = unicodedata.normalize("NFD", ch)[0]
            if base.isascii():
                ch = base
        out.append(ch)
    return "".join(out)


def _fix_confusables(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        has_latin = any(c.isascii() and c.isalpha() for c in word)
        if has_latin and any(c in _CONFUSABLE_KEYS for c in word):
            return word.translate(_CONFUSABLES)
        return word

    return re.sub(r"\w+", fix, text)


def normalize(text: str) -> str:
    """NFKC, casefold, strip format/control chars, diacritics of Latin letters, look-alikes."""
    chars: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or (cat == "Cc" and ch not in "\t\n\r"):
            continue  # zero-width space/joiner, BOM, bidi controls, soft hyphen, NUL, ...
        chars.append(" " if ch in "\t\r" else ch)
    # compose jamo typed apart before NFKC (which maps compatibility jamo to conjoining ones)
    text = _compose_jamo("".join(chars))
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _strip_latin_marks(text)
    text = _fix_confusables(text)
    return unicodedata.normalize("NFC", text)


# --- term lists -------------------------------------------------------------------------

Script = Literal["latin", "cjk", "hangul"]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    category: str
    script: Script
    tokens: tuple[str, ...]  # latin: normalised words; cjk/hangul: one compact string
    prefix: bool  # latin only: last word is a prefix


@dataclass(frozen=True)
class TermSet:
    version: str
    rules: tuple[Rule, ...]
    allow_latin: tuple[tuple[str, ...], ...]
    allow_cjk: tuple[str, ...]


_WORD_RE = re.compile(r"[^\W_]+")
_LEET_RUN_RE = re.compile(r"[^\W_]+(?:[@$!|+]+[^\W_]*)*|[@$!|+]+[^\W_]+")


def _char_class(ch: str) -> str:
    if ch.isascii() or _is_latin(ch):
        return "L"
    if _is_han_or_kana(ch):
        return "H"
    if _is_hangul(ch):
        return "K"
    return "O"


def _words(text: str) -> list[str]:
    """Runs of letters/digits, split where the script changes ("买sex玩具" -> 买, sex, 玩具)."""
    out: list[str] = []
    for run in _WORD_RE.findall(text):
        start = 0
        for i in range(1, len(run)):
            if _char_class(run[i]) != _char_class(run[i - 1]):
                out.append(run[start:i])
                start = i
        out.append(run[start:])
    return out


def _script_of(term: str) -> Script:
    if any(_is_han_or_kana(c) for c in term):
        return "cjk"
    if any(_is_hangul(c) for c in term):
        return "hangul"
    return "latin"


def compile_rule(rule_id: str, category: str, term: str) -> Rule:
    norm = normalize(term).strip()
    prefix = norm.endswith("*")
    norm = norm.rstrip("*")
    script = _script_of(norm)
    if script == "latin":
        # leet characters inside a listed term ("pr0n") stay literal words
        tokens = tuple(_words(norm))
        if not tokens:
            raise ValueError(f"rule {rule_id}: empty term")
        return Rule(rule_id, category, "latin", tokens, prefix)
    compact = "".join(c for c in norm if c.isalnum())
    if script == "cjk":
        compact = _kata(compact)
    return Rule(rule_id, category, script, (compact,), False)


def _files_sha(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=8)
def load_terms(terms_dir: Path = TERMS_DIR) -> TermSet:
    """The term lists of ``terms_dir`` (manifest.yaml + one file per language)."""
    manifest = yaml.safe_load((terms_dir / "manifest.yaml").read_text(encoding="utf-8"))
    files = [terms_dir / f for f in manifest["files"]]
    known = set(manifest["categories"])
    rules: list[Rule] = []
    allow_latin: list[tuple[str, ...]] = []
    allow_cjk: list[str] = []
    seen: set[str] = set()
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for phrase in data.get("allow") or []:
            _add_allow(str(phrase), allow_latin, allow_cjk)
        for entry in data["rules"]:
            rid, cat = entry["id"], entry["category"]
            if cat not in known:
                raise ValueError(f"{path.name}: rule {rid} has unknown category {cat!r}")
            if rid in seen:
                raise ValueError(f"{path.name}: duplicate rule id {rid}")
            seen.add(rid)
            rules.extend(compile_rule(rid, cat, str(t)) for t in entry["terms"])
    version = f"{manifest['version']}+{_files_sha([terms_dir / 'manifest.yaml', *files])[:12]}"
    return TermSet(version, tuple(rules), tuple(allow_latin), tuple(allow_cjk))


def _add_allow(phrase: str, latin: list[tuple[str, ...]], cjk: list[str]) -> None:
    norm = normalize(phrase)
    if _script_of(norm) == "latin":
        latin.append(tuple(_words(norm)))
    else:
        cjk.append(_kata("".join(c for c in norm if c.isalnum())))


def tenant_rules(policy_name: str, terms: Mapping[str, Iterable[str]]) -> tuple[Rule, ...]:
    """Per-tenant brand/competitor terms -> rules of category ``brand``."""
    out: list[Rule] = []
    for group, group_terms in sorted(terms.items()):
        for i, term in enumerate(group_terms, 1):
            out.append(compile_rule(f"tenant.{policy_name}.{group}.{i:03d}", "brand", str(term)))
    return tuple(out)


# --- matching ---------------------------------------------------------------------------


def _leet_tokens(text: str) -> list[str]:
    """Tokens with leetspeak undone where a word mixes letters and leet characters."""
    out: list[str] = []
    for raw in _LEET_RUN_RE.findall(text):
        word = raw.strip("!|+")
        letters = sum(c.isalpha() for c in word)
        leet = sum(c in _LEET_CHARS for c in word)
        if letters and leet and letters >= leet:
            word = word.translate(_LEET)
        out.extend(_words(word))
    return out


def _mask_allowed(tokens: list[str], allow: tuple[tuple[str, ...], ...]) -> list[str]:
    if not allow:
        return tokens
    tokens = list(tokens)
    for phrase in allow:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i : i + n]) == phrase:
                for k in range(i, i + n):
                    tokens[k] = "\x00"  # never matches a term
    return tokens


def _merge_runs(tokens: list[str]) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for t in [*tokens, ""]:
        if len(t) == 1 and t != "\x00":
            cur.append(t)
            continue
        if cur:
            out.append("".join(cur))
            cur = []
        if t:
            out.append(t)
    return out


def _single_runs(tokens: list[str]) -> list[str]:
    """Joined runs of >= 2 consecutive single-character tokens ("s e x" -> "sex")."""
    runs: list[str] = []
    cur: list[str] = []
    for t in [*tokens, ""]:
        if len(t) == 1 and t != "\x00":
            cur.append(t)
            continue
        if len(cur) >= 2:
            runs.append("".join(cur))
        cur = []
    return runs


def _match_latin(rule: Rule, tokens: list[str]) -> bool:
    n = len(rule.tokens)
    first = rule.tokens[0]
    for i in range(len(tokens) - n + 1):
        if n == 1 and rule.prefix:
            if tokens[i].startswith(first):
                return True
            continue
        if tokens[i] != first:
            continue
        middle_ok = all(tokens[i + k] == rule.tokens[k] for k in range(1, n - 1))
        last_ok = n == 1 or (
            tokens[i + n - 1].startswith(rule.tokens[-1])
            if rule.prefix
            else tokens[i + n - 1] == rule.tokens[-1]
        )
        if middle_ok and last_ok:
            return True
    return False


_CJK_BOUNDARY = re.compile(r"[。、\n]+")


def _cjk_segments(norm: str, allow: tuple[str, ...]) -> list[str]:
    segs: list[str] = []
    for seg in _CJK_BOUNDARY.split(norm):
        compact = _kata("".join(c for c in seg if c.isalnum()))
        for phrase in allow:
            compact = compact.replace(phrase, "\x00")
        if compact:
            segs.append(compact)
    return segs


def _kata(text: str) -> str:
    """Hiragana -> katakana, so せっくす and セックス compare equal."""
    return "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in text)


@dataclass(frozen=True)
class _Views:
    tokens: list[str]
    leet: list[str]
    runs: list[str]  # joined single-character runs (plain and leet)
    merged: list[str]  # tokens with each single-character run joined ("k i l l you" -> kill you)
    cjk: list[str]


def _mask_substrings(items: list[str], allow: tuple[str, ...]) -> list[str]:
    out = []
    for item in items:
        for phrase in allow:
            item = item.replace(phrase, "\x00")
        out.append(item)
    return out


def _views(norm: str, terms: TermSet) -> _Views:
    tokens = _mask_allowed(_words(norm), terms.allow_latin)
    leet = _mask_allowed(_leet_tokens(norm), terms.allow_latin)
    single = []  # every character standing alone, leet symbols mapped: "$ 3 x" -> s, e, x
    for raw in re.findall(r"[^\W_]+|[@$!|+]", norm):
        single.extend([raw.translate(_LEET)] if len(raw) == 1 else _words(raw))
    runs = _single_runs(tokens) + [r for r in _single_runs(single) if any(c.isalpha() for c in r)]
    return _Views(
        tokens=_mask_substrings(tokens, terms.allow_cjk),
        leet=leet,
        runs=_mask_substrings(runs, terms.allow_cjk),
        merged=_mask_allowed(_merge_runs(tokens), terms.allow_latin),
        cjk=_cjk_segments(norm, terms.allow_cjk),
    )


def match_rules(norm: str, rules: Iterable[Rule], terms: TermSet) -> list[TextMatch]:
    v = _views(norm, terms)
    matches: list[TextMatch] = []
    for rule in rules:
        how: str | None = None
        if rule.script == "latin":
            if _match_latin(rule, v.tokens):
                how = "word"
            elif _match_latin(rule, v.leet):
                how = "leet"
            elif _match_latin(rule, v.merged) or any("".join(rule.tokens) in run for run in v.runs):
                how = "spacing"
        elif rule.script == "cjk":
            if any(rule.tokens[0] in seg for seg in v.cjk):
                how = "substring"
        else:  # hangul: inside one word, or inside a joined run of single syllables
            needle = rule.tokens[0]
            if any(needle in t for t in v.tokens):
                how = "substring"
            elif any(needle in run for run in v.runs):
                how = "spacing"
        if how:
            matches.append(TextMatch(category=rule.category, rule_id=rule.rule_id, how=how))
    return matches


# The verdict names the most severe category that matched ("儿童色情" is minors, not sexual).
SEVERITY = ("minors", "sexual", "self-harm", "hate", "violence", "brand")


def _severity(m: TextMatch) -> int:
    return SEVERITY.index(m.category) if m.category in SEVERITY else len(SEVERITY)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(
    text: str,
    *,
    field: str = "prompt",
    policy: str | Path | Policy | None = None,
    terms_dir: Path = TERMS_DIR,
) -> TextVerdict:
    """Check one text. ``policy`` (a :class:`tasks.safety.policy.Policy` or name) adds tenant
    brand/competitor terms and chooses which categories block; default: the default policy."""
    pol = load_policy(policy)
    terms = load_terms(terms_dir)
    if not isinstance(text, str):
        raise TypeError(f"{field}: text must be str, got {type(text).__name__}")
    norm = normalize(text)
    rules = [r for r in terms.rules if r.category in pol.text.categories]
    rules.extend(tenant_rules(pol.name, pol.text.brand_terms))
    matches = sorted(match_rules(norm, rules, terms), key=_severity)
    first = matches[0] if matches else None
    return TextVerdict(
        passed=first is None,
        field=field,
        category=first.category if first is not None else None,
        rule_id=first.rule_id if first is not None else None,
        matches=matches,
        term_list_version=terms.version,
        policy_name=pol.name,
        policy_version=pol.version_id,
        text_sha256=text_sha256(text),
    )


def check_texts(
    texts: Mapping[str, str],
    *,
    policy: str | Path | Policy | None = None,
    terms_dir: Path = TERMS_DIR,
) -> list[TextVerdict]:
    """One verdict per named text ({"prompt": ..., "enhanced_prompt": ..., "overlay.0": ...})."""
    pol = load_policy(policy)
    return [check_text(t, field=f, policy=pol, terms_dir=terms_dir) for f, t in texts.items()]


def require_safe_texts(
    texts: Mapping[str, str], *, policy: str | Path | Policy | None = None
) -> list[TextVerdict]:
    """Return the verdicts if every text passes; otherwise raise :class:`TextBlocked`
    (a ``BlockedBySafety``, exit code 3) naming field, category and rule id, not the term."""
    from tasks.safety.verdicts import TextBlocked

    verdicts = check_texts(texts, policy=policy)
    for v in verdicts:
        if not v.passed:
            raise TextBlocked(v, verdicts)
    return verdicts
