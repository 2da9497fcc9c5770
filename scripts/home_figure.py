"""Writes the home page's figure (ancestry -> learngene -> descendants) as inline SVG.

    python scripts/home_figure.py          # prints the <figure> block
    python scripts/home_figure.py --write  # replaces it in docs/index.md

The SVG has a fixed pixel size (`width`/`height`, scaled down only where the page is
narrower): Material's `<figure>` is `width: fit-content`, inside which a `width="100%"`
SVG falls back to about 300 px and its labels to 3-4 px. Labels are 15-17 units for a
780-unit-wide drawing, so they stay above 12 px in a content column of 640 px or more.
tests/test_docs.py checks the size in the built page.
"""

import pathlib
import re
import sys

INDEX = pathlib.Path(__file__).resolve().parents[1] / "docs" / "index.md"
W, H = 780, 350
BOX_W, BOX_H, STEP = 80, 22, 26  # a unit's box and the distance between units
LABEL, CAPTION, LEGEND = 16, 17, 15  # font sizes, in the drawing's units
BASE = 250  # the stem's top edge
STYLE = {
    "stem": ("#d1d5db", "#6b7280", ""),
    "gene": ("#fcd34d", "#b45309", ""),
    "other": ("#bfdbfe", "#3b82f6", ""),
    "fresh": ("#ffffff", "#6b7280", ' stroke-dasharray="4 3"'),
    "head": ("#bbf7d0", "#15803d", ""),
    "old_head": ("#e5e7eb", "#6b7280", ""),
}
TEXT = 'text-anchor="middle" fill="#111827"'


def box(x, level, kind, label=None):
    fill, stroke, extra = STYLE[kind]
    y = BASE - level * STEP
    out = [f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="3" fill="{fill}" '
           f'stroke="{stroke}"{extra}/>']
    if label:
        out.append(f'<text x="{x + BOX_W / 2:g}" y="{y + BOX_H / 2 + LABEL * 0.35:g}" '
                   f'font-size="{LABEL}" {TEXT}>{label}</text>')
    return out


def column(x, kinds, caption):
    out = []
    for level, (kind, label) in enumerate(kinds):
        out += box(x, level, kind, label)
    out.append(f'<text x="{x + BOX_W / 2:g}" y="{BASE + BOX_H + 22}" font-size="{CAPTION}" '
               f'text-anchor="middle" fill="currentColor">{caption}</text>')
    return out


def arrow(x1, x2, y, label):
    return [f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="currentColor" '
            f'stroke-width="1.5" marker-end="url(#klg-arrow)"/>',
            f'<text x="{(x1 + x2) / 2:g}" y="{y - 8}" font-size="{CAPTION}" '
            f'text-anchor="middle" fill="currentColor">{label}</text>']


def svg():
    gene = [("gene", f"unit {i}") for i in range(3)]
    ancestry = [("stem", "stem"), *gene, *[("other", f"unit {i}") for i in range(3, 8)],
                ("old_head", "head")]
    learngene = [("stem", "stem"), *gene]
    x_anc, x_gene, x_desc, gap = 30, 250, 440, 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
        f'height="{H}" style="max-width: 100%; height: auto" role="img" '
        'aria-labelledby="klg-figure-title">',
        '<title id="klg-figure-title">An ancestry of 8 units is condensed into a learngene of '
        '3 units, which descendants of 0, 2 and 5 new units inherit, each with a new head.'
        '</title>',
        '<defs><marker id="klg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/>'
        '</marker></defs>',
    ]
    out += column(x_anc, ancestry, "ancestry")
    out += column(x_gene, learngene, "learngene")
    for i, n in enumerate((0, 2, 5)):
        kinds = [("stem", "stem"), *[("gene", None)] * 3, *[("fresh", None)] * n, ("head", "head")]
        out += column(x_desc + i * (BOX_W + gap), kinds, f"n_layers={n}")
    mid = BASE - 2 * STEP + BOX_H / 2
    out += arrow(x_anc + BOX_W + 12, x_gene - 12, mid, "condense")
    out += arrow(x_gene + BOX_W + 12, x_desc - 12, mid, "inherit")
    out.append(f'<text x="{x_desc + 1.5 * BOX_W + gap:g}" y="{BASE + BOX_H + 44}" '
               f'font-size="{CAPTION}" text-anchor="middle" fill="currentColor">'
               'descendants</text>')
    x, y = x_anc, H - 16
    for kind, label in (("gene", "learngene unit (inherited)"), ("other", "other ancestry unit"),
                        ("fresh", "fresh unit"), ("head", "new head")):
        fill, stroke, extra = STYLE[kind]
        out.append(f'<rect x="{x}" y="{y - 12}" width="18" height="14" rx="2" fill="{fill}" '
                   f'stroke="{stroke}"{extra}/>')
        out.append(f'<text x="{x + 24}" y="{y}" font-size="{LEGEND}" fill="currentColor">'
                   f'{label}</text>')
        x += 24 + int(len(label) * LEGEND * 0.55) + 24
    out.append("</svg>")
    return "\n".join(out)


def figure():
    return f"<figure>\n{svg()}\n</figure>"


def main(argv):
    if "--write" in argv:
        text = INDEX.read_text(encoding="utf-8")
        new, n = re.subn(r"<figure>\n<svg .*?</svg>\n</figure>", lambda _: figure(), text,
                         count=1, flags=re.DOTALL)
        if n != 1:
            sys.exit(f"no <figure><svg> block in {INDEX}")
        INDEX.write_text(new, encoding="utf-8")
    else:
        print(figure())


if __name__ == "__main__":
    main(sys.argv[1:])
