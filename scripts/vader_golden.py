#!/usr/bin/env python3
"""Writes tests/data/vader_golden.tsv: reference VADER scores that src/model/vader_test.cc checks.

The scores come from the authors' reference implementation, the PyPI package vaderSentiment 3.3.2
(MIT). galley::model::VaderAnalyzer must reproduce them to 1e-4.

How to run (from the repository root; .venv is git-ignored):

    python3 -m venv .venv
    .venv/bin/pip install vadersentiment==3.3.2
    .venv/bin/python scripts/vader_golden.py > tests/data/vader_golden.tsv

The script refuses to run against any other version of the package, and it checks that the
reference gives the compound scores that the vaderSentiment README publishes (one of them, listed
in README_DRIFT, was published from an older release).

Output format: UTF-8, tab-separated, '#' comment lines first, then a header line
"text neg neu pos compound source", then one row per sentence. In the text column a backslash
starts an escape: \\t, \\n, \\r, \\\\ and \\xNN (one raw byte, used for invalid UTF-8). Rows with
raw bytes are scored the way Python sees such bytes when decoded with errors="surrogateescape":
one character per invalid byte.
"""

import importlib.metadata
import sys

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

REFERENCE_VERSION = "3.3.2"

# The examples in the vaderSentiment README, with the compound scores it publishes.
README = [
    ("VADER is smart, handsome, and funny.", 0.8316),
    ("VADER is smart, handsome, and funny!", 0.8439),
    ("VADER is very smart, handsome, and funny.", 0.8545),
    ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227),
    ("VADER is VERY SMART, handsome, and FUNNY!!!", 0.9342),
    ("VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", 0.9469),
    ("VADER is not smart, handsome, nor funny.", -0.7424),
    ("The book was good.", 0.4404),
    ("At least it isn't a horrible book.", 0.431),
    ("The book was only kind of good.", 0.3832),
    ("The plot was good, but the characters are uncompelling and the dialog is not great.",
     -0.7042),
    ("Today SUX!", -0.5461),
    ("Today only kinda sux! But I'll get by, lol", 0.5249),
    ("Make sure you :) or :D today!", 0.8633),
    ("Catch utf-8 emoji such as such as \U0001F498 and \U0001F48B and \U0001F601", 0.7003),
    ("Not bad at all", 0.431),
]

# README examples whose published score came from an older release. The golden row holds what
# 3.3.2 gives. vaderSentiment 3.2.1 gives 0.7003 here; 3.3.x replaces each emoji with its text
# description ("growing heart", "kiss mark", "beaming face with smiling eyes") and gives 0.875.
README_DRIFT = {
    "Catch utf-8 emoji such as such as \U0001F498 and \U0001F48B and \U0001F601": 0.875,
}

# The "tricky sentences", paragraph and image-tag examples of the reference module's demo.
DEMO = [
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    "Without a doubt, an excellent idea.",
    "It was one of the worst movies I've seen, despite good reviews.",
    "Unbelievably bad acting!!",
    "Poor direction.",
    "VERY poor production.",
    "The movie was bad.",
    "Very bad movie.",
    "VERY BAD movie!",
    "happy birthday",
    "laughing",
    "tear gas",
]

# Our own cases, one or more per rule of the reference implementation.
CUSTOM = [
    # negation: NEGATE words, "n't", one to three words before the lexicon word
    "The food is not good.",
    "I don't like it.",
    "It wasn't horrible, it wasn't great either.",
    "He is not very happy.",
    "It is not at all good.",
    "Nothing about it was nice.",
    "Ain't nobody got time for that",
    "I seldom feel lonely",
    # boosters and dampeners, including in ALL CAPS
    "The party was extremely fun.",
    "The movie was slightly funny.",
    "The service was ABSOLUTELY awful.",
    "She is barely acceptable as a singer",
    "It is sort of sad, sort-of tragic and sorta funny",
    "I am just enough happy",
    # ALL-CAPS differential
    "I LOVE this song",
    "I LOVE THIS SONG",
    "GREAT",
    "It was TERRIBLE and SAD",
    # "but"
    "The food was great but the service was terrible.",
    "I love it, BUT I hate it but I need it",
    "kind but ok",  # the reference's list.index() lookup in its "but" rule shows here
    "happy great worst but yeah nice happy",
    # "least"
    "This is the least good idea ever",
    "least favorite day",
    "At the very least it is good",
    # "kind of" and the lexicon word "kind"
    "It was kind of good",
    "The kind people were nice",
    "That is kindof great and kinda awful",
    # idioms and special cases
    "The new album is the bomb",
    "That concert was the shit",
    "He is a bad ass guitar player",
    "Yeah right, like that will work",
    "It was the kiss of death for the project",
    "This chocolate cake is to die for",
    "I waited at the bus stop",
    "I heard my beating heart",
    "That idea does not cut the mustard",
    # "never so/this", "without doubt"
    "I have never been so happy",
    "It has never been this bad",
    "Without doubt, the best pizza",
    "Without a doubt, the best pizza",
    # "no"
    "No problem at all",
    "There is no joy or happiness here",
    "no",
    "No, it is not ok",
    "NO GOOD",
    "no no no good",
    # exclamation and question marks
    "This is great!!!!!!!",
    "Is it good?",
    "Is it good??",
    "Is it good???",
    "Is it good????",
    "What is this??",
    "That was awful?!?!",
    # emoticons, emojis and punctuation stripping
    ":) :( :-D ;) <3",
    "'Great' (amazing) --terrible-- ok.",
    "That is ok. Fine:)",  # "ok." keeps its dot: stripped, it would be two characters
    "I am \U0001F601",
    "\U0001F601\U0001F601\U0001F494",
    "adjacent\U0001F601emoji and text",
    "\U0001F51B good show",  # the description "ON! arrow" adds an exclamation mark
    "\U0001F44D\U0001F3FD nice",
    "\U0001F1EC\U0001F1E7 flag",
    "\u00a9 2020 great corp",
    # empty-ish
    "",
    "   ",
    "...",
    "!!!",
    "?",
    # whitespace and non-ASCII text
    "good\tday\nnice\r\nweather",
    "good\u00a0day\u3000great\u2003fun",
    "good\u200bgreat",
    "Caf\u00e9 is GREAT and nice",
    "CAF\u00c9 GOOD",
    "GR\u00dc\u00dfE GOOD day",
    "GR\u00dc\u00dfE GOOD",  # \u00df is lower-case, so not every word is upper-case
    "\u00c0 GOOD DAY",  # \u00c0 alone is upper-case
    "\u00ba GOOD",  # U+00BA counts as lower-case to Python
    "na\u00efve but lovely",
    "\u65e5\u672c\u8a9e good",
    "\u00a1Excelente! good",
    ":\u00de :-\u00de haha",
    # a longer text
    "I bought this phone last week. The screen is gorgeous and the battery lasts forever, but "
    "the camera is disappointing and customer support was rude. Overall I'm not unhappy!",
]

# Raw byte strings: invalid UTF-8 must be safe and is scored like Python's surrogateescape text.
RAW = [
    b"good \xff\xfe great",
    b"bad\xc3 movie \xe2\x82",
    b"\xed\xa0\x80 happy \xf4\x90\x80\x80 sad",
    b"\xc0\xaf NOT good",
]


def escape(text):
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that surrogateescape kept
            out.append("\\x%02x" % (code - 0xDC00))
        else:
            out.append(ch)
    return "".join(out)


def main():
    version = importlib.metadata.version("vaderSentiment")
    if version != REFERENCE_VERSION:
        sys.exit("vader_golden: need vaderSentiment %s, found %s" % (REFERENCE_VERSION, version))
    analyzer = SentimentIntensityAnalyzer()

    rows = []
    for text, published in README:
        scores = analyzer.polarity_scores(text)
        published = README_DRIFT.get(text, published)
        if scores["compound"] != published:
            sys.exit("vader_golden: README example %r: reference gives %s, README says %s" %
                     (text, scores["compound"], published))
        rows.append((text, scores, "readme"))
    rows += [(text, analyzer.polarity_scores(text), "demo") for text in DEMO]
    rows += [(text, analyzer.polarity_scores(text), "custom") for text in CUSTOM]
    for raw in RAW:
        text = raw.decode("utf-8", errors="surrogateescape")
        rows.append((text, analyzer.polarity_scores(text), "raw"))

    out = sys.stdout
    out.write("# Generated by scripts/vader_golden.py from vaderSentiment %s; do not edit.\n" %
              version)
    out.write("# Text escapes: \\t \\n \\r \\\\ and \\xNN (a raw byte).\n")
    out.write("text\tneg\tneu\tpos\tcompound\tsource\n")
    for text, s, source in rows:
        out.write("%s\t%r\t%r\t%r\t%r\t%s\n" %
                  (escape(text), s["neg"], s["neu"], s["pos"], s["compound"], source))


if __name__ == "__main__":
    main()
