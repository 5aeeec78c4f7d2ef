"""The reading report: what counts as main path, folded, a number, a diagram, a key idea and a question."""

from __future__ import annotations

from book import reading

PAGE = """
<html><body><nav>menu 1 2 3</nav><article class="bd-article"><section>
<h1>Attention<a class="headerlink" href="#">#</a></h1>
<div class="in-this-chapter admonition"><p class="admonition-title">In this chapter</p>
<ul><li><p>compute attention by hand</p></li></ul></div>
<p>SmolLM2 has 30 layers and int8 halves 4.5% of 1,000 weights <span class="math">\\(T=7\\)</span>
<code>x = 12</code> [<a href="references.html#id3">Vaswani et al., 2017</a>].</p>
<div class="cell"><div class="cell_input"><pre>a = 1
b = 2

</pre></div><div class="cell_output"><div class="output text_html">
<figure class="diagram"><img class="diagram" alt="x"><figcaption>Scores 99</figcaption></figure></div>
<pre>printed 5 6 7</pre></div></div>
<div class="math">\\[ 1 + 2 = 3 \\]</div>
<details class="deeper"><summary>Going deeper: kernels</summary><div class="deeper-body">
<p>Twelve words of folded prose with 3 numbers 4 5 here.</p><pre>x = 1
y = 2
z = 3</pre>
<figure class="diagram"><img class="diagram" alt="y"></figure></div></details>
<div class="solution dropdown admonition"><p>An answer of five words.</p></div>
<section id="key-ideas"><h2>Key ideas<a class="headerlink" href="#">#</a></h2>
<ul><li><p>one</p></li><li><p>two</p></li></ul></section>
<section id="check-your-understanding"><h2>Check your understanding</h2>
<div class="exercise admonition"><p>Why?</p></div><div class="exercise admonition"><p>How?</p></div></section>
</section></article></body></html>
"""


def test_the_main_path_leaves_out_outputs_equations_and_folds():
    r = reading.measure(PAGE, "chapters/attention")
    assert r.main_code_lines == 2            # the cell input; the printed output is not read
    assert r.folded_code_lines == 3          # the code in the deeper block
    assert r.diagrams == 1                   # the folded diagram does not count
    assert r.in_this_chapter and r.key_ideas == 2 and r.questions == 2
    # numbers: 30, 4.5%, 1,000 (not SmolLM2, int8, the math, the code, the citation's year)
    assert r.numbers == 3
    folded_text = "Going deeper: kernels Twelve words of folded prose with 3 numbers 4 5 here. An answer of five words."
    assert r.folded_words == len(folded_text.split())
    assert r.main_minutes == r.main_words / 200 + 2 / 20


def test_a_chapter_is_judged_against_the_template():
    r = reading.measure(PAGE, "chapters/attention")
    problems = " | ".join(r.problems())
    assert "1 diagrams" in problems and "2 key ideas" in problems and "2 questions" in problems
    assert "numbers per 100 words" in problems
    good = reading.PageReading("p", main_words=3000, main_code_lines=100, folded_words=9000, folded_code_lines=400,
                               diagrams=3, numbers=60, key_ideas=6, questions=4, in_this_chapter=True)
    assert good.main_minutes == 20 and good.problems() == []
    slow = reading.PageReading("p", 5000, 200, 0, 0, 3, 10, 6, 4, True)
    assert any("main path takes 35 min" in p for p in slow.problems())


def test_the_table_has_a_row_per_page_with_its_verdict():
    rows = [reading.measure(PAGE, "chapters/attention"),
            reading.measure(PAGE.replace("In this chapter", "Overview"), "chapters/setup")]
    lines = reading.table(rows).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| chapters/attention |") and "diagrams" in lines[2]
    assert lines[3].endswith("|  |")  # pages without "In this chapter" are not judged


def test_the_report_reads_every_built_page_of_the_toc(tmp_path):
    for page in ("chapters/intro", "chapters/attention"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{page}.html").write_text(PAGE)
    readings = reading.write(tmp_path, tmp_path / "reading-report")
    assert [r.page for r in readings] == ["chapters/intro", "chapters/attention"]
    assert (tmp_path / "reading-report.json").is_file() and (tmp_path / "reading-report.md").is_file()
