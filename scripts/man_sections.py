#!/usr/bin/env python3
"""Adds the hand-written man page sections to pages from swift-argument-parser's generate-manual.

    python3 scripts/man_sections.py [--sections man/sections] DIR

DIR holds the generated pages (fedlora.1, fedlora.merge.1, ...); each is rewritten in place.
`make man` and `make check-man` both run this, so the committed man/ and the regenerated
.build/man-check match. The script uses only the Python 3 standard library.

Section files, in the --sections folder, hold mdoc text without the .Sh line. Lines starting
with .\\" are comments and are dropped.
  SLUG.mdoc        goes on every page, e.g. exit-status.mdoc, environment.mdoc
  PAGE.SLUG.mdoc   replaces SLUG.mdoc on one page, e.g. merge.examples.mdoc. A file that is
                   empty (comments only) leaves the section off that page.
PAGE is the page name without the tool prefix and ".1": "fedlora" for fedlora.1, "merge" for
fedlora.merge.1. SLUG is a section title in lower case, with '-' for blanks (EXIT STATUS is
exit-status). A section the generator already wrote (EXIT STATUS: .Ex -std) is replaced. A new
section goes where mdoc(7) puts it: ENVIRONMENT, EXIT STATUS and EXAMPLES come after
DESCRIPTION and before SEE ALSO and AUTHORS.

The generated text also gets layout-only fixes. The plugin cannot express these, and mandoc -T
lint, groff -ww and man --warnings report them. Words are never changed.
  - Blank lines (paragraph breaks in a discussion) become .Pp.
  - .Pp is dropped where mdoc skips it: before .It, .El, .Bl or .Sh, right after .Sh, and at the
    end of a section. The plugin writes ".Pp" before ".It" for a CaseIterable option type whose
    cases have no descriptions.
  - Text lines are split at sentence ends and wrapped at 80 bytes.
  - A text line starting with '.' or "'" would be read as a request, so it gets a leading \\&
    (reported on stderr: the fix belongs in the help string).
  - The trailing period of .Nd is dropped, as mdoc(7) asks.
"""

import argparse
import os
import re
import sys

# Section order of mdoc(7), "MANUAL STRUCTURE".
ORDER = [
    "NAME", "LIBRARY", "SYNOPSIS", "DESCRIPTION", "CONTEXT", "IMPLEMENTATION NOTES",
    "RETURN VALUES", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "DIAGNOSTICS", "ERRORS",
    "SEE ALSO", "STANDARDS", "HISTORY", "AUTHORS", "CAVEATS", "BUGS", "SECURITY CONSIDERATIONS",
]
SLUGS = {title.lower().replace(" ", "-"): title for title in ORDER}
MARKER = '.\\" EXAMPLES, EXIT STATUS, ENVIRONMENT: man/sections/, added by scripts/man_sections.py'
WIDTH = 80
# Abbreviations after which a capital letter does not start a sentence.
ABBREVIATIONS = {"e.g.", "i.e.", "cf.", "vs.", "etc.", "approx.", "no."}
# mdoc macros and the roff requests a page may use: a line starting with another name is text.
MACROS = set("""
    Dd Dt Os Sh Ss Pp Lp D1 Dl Bd Ed Bl El It Ta Nm Nd Ar Fl Op Oo Oc Cm Ic Li Ns Pa Sx Ev Dv
    Em Sy Ql Dq Sq Pq Qq Aq Bq Brq Eo Ec Xo Xc Xr Ex Rv St Bx At Lk Mt Fn Fa Ft Fd Fo Fc In Va
    Vt Er Ad An Ap Bf Ef Bk Ek Sm Tn Ms No Pf Ot Rs Re Bt Ud Lb Ud Hf Dx Fx Nx Ox Bsx Ux
    sp br nf fi ft ti in ad na ne ce ds de if ie el so tr nr rm ig
""".split())


class Failure(Exception):
    pass


def page_key(filename, tool):
    """'fedlora.merge.1' -> 'merge', 'fedlora.1' -> 'fedlora' (None for other files)."""
    match = re.fullmatch(re.escape(tool) + r"((?:\.[^.]+)*)\.(\d[a-z]*)", filename)
    if not match:
        return None
    rest = match.group(1)
    return rest[1:] if rest else tool


def read_section(path):
    """The mdoc lines of a section file without comments, or [] for an empty one."""
    with open(path, encoding="utf-8") as handle:
        numbered = [(n, line.rstrip("\n")) for n, line in enumerate(handle, 1)]
    body = [(n, line) for n, line in numbered if not line.startswith('.\\"')]
    while body and not body[-1][1].strip():
        body.pop()
    while body and not body[0][1].strip():
        body.pop(0)
    for number, line in body:
        if re.match(r"\.S[hs]\b", line):
            raise Failure(f"{path}:{number}: section files hold the body only (no .Sh or .Ss)")
        if not line.strip():
            raise Failure(f"{path}:{number}: blank line (mdoc wants .Pp)")
        if line != line.rstrip():
            raise Failure(f"{path}:{number}: trailing blank")
    return [line for _, line in body]


def load_sections(folder):
    """({slug: lines}, {(page, slug): lines}) from the section folder."""
    shared, own = {}, {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".mdoc"):
            continue
        stem = name[: -len(".mdoc")]
        path = os.path.join(folder, name)
        if stem in SLUGS:
            shared[stem] = read_section(path)
            continue
        page, _, slug = stem.rpartition(".")
        if not page or slug not in SLUGS:
            raise Failure(f"{path}: name it SLUG.mdoc or PAGE.SLUG.mdoc, SLUG one of {', '.join(SLUGS)}")
        own[(page, slug)] = read_section(path)
    return shared, own


def title_of(line):
    """The title of a '.Sh' line, without quotes."""
    return line[3:].strip().strip('"').upper()


def split_sections(lines):
    """[(title or None for the prologue, [lines])]."""
    parts = [(None, [])]
    for line in lines:
        if line.startswith(".Sh ") or line == ".Sh":
            parts.append((title_of(line), [line]))
        else:
            parts[-1][1].append(line)
    return parts


def escape_start(word):
    """A line must not start with a control character."""
    return "\\&" + word if word[:1] in (".", "'") else word


def ends_sentence(word):
    """Whether roff reads `word` at the end of a line as the end of a sentence."""
    core = word.rstrip(")]\"'*")
    return core[-1:] in (".", "!", "?")


def sentences(text):
    """A text line split after each sentence end ('. ' before a capital letter)."""
    words = text.split(" ")
    out, current = [], []
    for index, word in enumerate(words):
        current.append(word)
        following = words[index + 1] if index + 1 < len(words) else ""
        if (ends_sentence(word) and word.lower() not in ABBREVIATIONS and not word.endswith("\\")
                and re.match(r"[A-Z]", following)):
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def wrap(text):
    """Lines of at most WIDTH bytes where possible. A line never breaks after a word that would
    end a sentence (roff would add sentence spacing there), nor at an escaped blank."""
    lines, current = [], []
    for word in text.split(" "):
        current.append(word)
        if len(" ".join(current).encode()) <= WIDTH:
            continue
        # The last blank at which the line may break, keeping the new word on the next line.
        for cut in range(len(current) - 1, 0, -1):
            before = current[cut - 1]
            if not ends_sentence(before) and not before.endswith("\\"):
                lines.append(" ".join(current[:cut]))
                current = current[cut:]
                break
    if current:
        lines.append(" ".join(current))
    return [escape_start(line) for line in lines]


def normalise(lines, page, notes):
    """Layout-only fixes to the generated lines (see the module docstring)."""
    out = []
    literal = False
    for number, line in enumerate(lines, 1):
        if re.match(r"\.(Bd\b.*-(literal|unfilled)|nf\b)", line):
            literal = True
        elif re.match(r"\.(Ed|fi)\b", line):
            literal = False
        if literal:
            out.append(line)
            continue
        if line.strip() == "":
            out.append(".Pp")
            continue
        if line.startswith(".Nd "):
            argument = line[4:]
            quoted = len(argument) > 1 and argument.startswith('"') and argument.endswith('"')
            inner = argument[1:-1] if quoted else argument
            if inner.endswith(".") and not inner.endswith(".."):
                inner = inner[:-1]
            out.append(".Nd " + (f'"{inner}"' if quoted else inner))
            continue
        if line.startswith((".", "'")):
            name = re.match(r"[.']\s*(\S*)", line).group(1)
            if line.startswith('.\\"') or name in MACROS:
                out.append(line)
                continue
            notes.append(f"{page}:{number}: text line starts with {line[0]!r}, which makes it a request "
                         f"(escaped with \\&; the help string should not start with it): {line[:50]!r}")
        for sentence in sentences(line.strip()):
            out.extend(wrap(sentence))
    return tidy_paragraphs(out)


def tidy_paragraphs(lines):
    """Drops .Pp where mdoc would skip it (and warn)."""
    out = []
    for index, line in enumerate(lines):
        if line == ".Pp":
            previous = out[-1] if out else ""
            following = next((l for l in lines[index + 1:]), "")
            if (previous == ".Pp" or previous.startswith(".Sh") or previous.startswith(".Bl")
                    or following == ".Pp" or re.match(r"\.(It|El|Bl|Sh|Ss)\b", following) or following == ""):
                continue
        out.append(line)
    return out


def process(path, page, shared, own, notes):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    lines = normalise(lines, os.path.basename(path), notes)
    if MARKER not in lines:
        lines.insert(1 if lines and lines[0].startswith('.\\"') else 0, MARKER)
    parts = split_sections(lines)
    wanted = {}
    for slug in SLUGS:
        body = own.get((page, slug), shared.get(slug))
        if body is not None:
            wanted[SLUGS[slug]] = body
    for title, body in wanted.items():
        header = f'.Sh "{title}"' if " " in title else f".Sh {title}"
        existing = [i for i, (t, _) in enumerate(parts) if t == title]
        if not body:
            for i in reversed(existing):
                del parts[i]
            continue
        if existing:
            parts[existing[0]] = (title, [header] + body)
            continue
        rank = ORDER.index(title)
        position = next((i for i, (t, _) in enumerate(parts) if t in ORDER and ORDER.index(t) > rank), len(parts))
        parts.insert(position, (title, [header] + body))
    titles = [t for t, _ in parts if t in ORDER]
    if titles != sorted(titles, key=ORDER.index):
        notes.append(f"{os.path.basename(path)}: sections out of mdoc order: {', '.join(titles)}")
    text = "\n".join(line for _, part in parts for line in part) + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main():
    parser = argparse.ArgumentParser(description="Insert man/sections/ into generated man pages.")
    parser.add_argument("directory", help="folder of pages from generate-manual (rewritten in place)")
    parser.add_argument("--sections", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "man", "sections"))
    parser.add_argument("--tool", default="fedlora", help="the tool name that prefixes page names")
    args = parser.parse_args()
    try:
        shared, own = load_sections(args.sections)
        pages = {}
        for name in sorted(os.listdir(args.directory)):
            key = page_key(name, args.tool)
            if key is not None:
                pages[key] = os.path.join(args.directory, name)
        if args.tool not in pages:
            raise Failure(f"{args.directory}: no {args.tool}.1 (is it the output of generate-manual?)")
        for page, slug in sorted(own):
            if page not in pages:
                raise Failure(f"{args.sections}/{page}.{slug}.mdoc: no page for '{page}' in {args.directory} "
                              "(a renamed or removed subcommand?)")
        notes = []
        for page, path in pages.items():
            process(path, page, shared, own, notes)
        for note in notes:
            print(f"man_sections: {note}", file=sys.stderr)
    except (Failure, OSError) as error:
        print(f"man_sections: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
