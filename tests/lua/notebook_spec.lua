-- strata notebook: the Markdown renderer (hand-written expected HTML), the
-- base64 encoder (RFC 4648 vectors and coreutils' base64), the cell
-- splitter, and whole notebooks rendered by the executable (STRATA_EXE):
-- escaped prose and output, tracebacks, embedded images, tables, exit
-- codes, stop / keep-going, atomic writes and the plain-script run.
local md = require "strata.notebook.markdown"
local page = require "strata.notebook.page"
local parse = require "strata.notebook.parse"
local h = require "spec_helpers"

local EXE = os.getenv("STRATA_EXE")
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)/tests/lua/[^/]*$") or "../.."

local dir
setup(function() dir = h.tmpdir() end)
teardown(function() h.rmdir(dir) end)
local quote, write, slurp = h.quote, h.write, h.slurp

-- Runs `strata` with arguments in the test directory; returns the exit
-- code, stdout and stderr.
local function run(args)
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  local cmd = ("cd %s && %s %s > out.txt 2> err.txt"):format(quote(dir), quote(EXE), table.concat(words, " "))
  local _, _, code = os.execute(cmd)
  return code, slurp(dir .. "/out.txt"), slurp(dir .. "/err.txt")
end

local function contains(haystack, needle)
  assert(haystack:find(needle, 1, true), ("expected to find %q"):format(needle))
end

local function lacks(haystack, needle)
  assert(not haystack:find(needle, 1, true), ("did not expect %q"):format(needle))
end

-- The section of the page for code cell n (its outputs included).
local function cell_html(html, n)
  return html:match('<section class="cell code [^"]*" id="cell%-' .. n .. '">.-</section>')
end

describe("markdown", function()
  it("renders headings, paragraphs and emphasis", function()
    assert.are.equal(
      '<h2 id="a-title">A <em>title</em></h2>\n<p>one <strong>two</strong> <code>x &lt; y</code>\nthree</p>',
      md.render("## A *title*\n\none **two** `x < y`\nthree"))
    assert.are.equal("<p>a_b_c and <em>it</em> and 2 * 3 * 4</p>", md.render("a_b_c and _it_ and 2 * 3 * 4"))
    assert.are.equal("<p><em><strong>both</strong></em> <del>gone</del> *kept*</p>",
      md.render("***both*** ~~gone~~ \\*kept\\*"))
  end)

  it("escapes raw HTML and every special character", function()
    assert.are.equal("<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;</p>",
      md.render([[<script>alert("x")</script> & 'q']]))
    assert.are.equal("<h1 id=\"b-i\">&lt;b&gt; &amp; &lt;i&gt;</h1>", md.render("# <b> & <i>"))
  end)

  it("keeps safe links and drops javascript: ones", function()
    assert.are.equal('<p><a href="https://x.org/a_b" title="t">see <em>this</em></a></p>',
      md.render('[see *this*](https://x.org/a_b "t")'))
    assert.are.equal("<p>bad</p>", md.render("[bad](javascript:alert(1))"))
    assert.are.equal('<p><img src="p&quot;q.png" alt="a &lt;b&gt;"></p>', md.render('![a <b>](p"q.png)'))
    assert.are.equal('<p>go <a href="https://a.org/x">https://a.org/x</a>.</p>', md.render("go https://a.org/x."))
    assert.are.equal('<p><img src="data:image/png;base64,AA" alt="i"></p>',
      md.render("![i](f.png)", { image = function(src) return src == "f.png" and "data:image/png;base64,AA" end }))
  end)

  it("renders nested lists, ordered lists and quotes", function()
    assert.are.equal("<ul>\n<li>a</li>\n<li>b\n<ul>\n<li>c</li>\n</ul></li>\n</ul>", md.render("- a\n- b\n  - c"))
    assert.are.equal('<ol start="3">\n<li>x</li>\n<li>y</li>\n</ol>', md.render("3. x\n4. y"))
    assert.are.equal("<blockquote>\n<p>q <em>e</em></p>\n</blockquote>", md.render("> q *e*"))
    assert.are.equal("<ul>\n<li><p>a</p></li>\n<li><p>b</p></li>\n</ul>", md.render("- a\n\n- b"))
    assert.are.equal("<p>para\n2024. a year</p>", md.render("para\n2024. a year"))
    assert.are.equal("<p>para</p>\n<ul>\n<li>item</li>\n</ul>", md.render("para\n- item"))
  end)

  it("renders pipe tables with alignment and escaped pipes", function()
    assert.are.equal(table.concat({
      "<table>",
      '<thead><tr><th style="text-align:left">a</th><th style="text-align:right">b</th></tr></thead>',
      "<tbody>",
      '<tr><td style="text-align:left"><code>x|y</code></td><td style="text-align:right">&lt;2&gt;</td></tr>',
      "</tbody></table>" }, "\n"), md.render("| a | b |\n|:--|--:|\n| `x\\|y` | <2> |"))
  end)

  it("renders fenced code through the highlighter hook, escaped otherwise", function()
    assert.are.equal('<pre><code class="language-sh">a &lt; b\n  c</code></pre>', md.render("```sh\na < b\n  c\n```"))
    assert.are.equal('<pre><code class="language-lua"><span class="k">local</span> x</code></pre>',
      md.render("```lua\nlocal x\n```", { code = function(s) return page.highlight(s) end }))
  end)

  it("makes heading ids unique across calls", function()
    local ids = {}
    assert.are.equal('<h1 id="x">x</h1>', md.render("# x", { ids = ids }))
    assert.are.equal('<h2 id="x-2">x</h2>', md.render("## x", { ids = ids }))
  end)
end)

describe("base64", function()
  it("matches the RFC 4648 vectors", function()
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
      foobar = "Zm9vYmFy" }
    for input, expected in pairs(vectors) do assert.are.equal(expected, page.base64(input)) end
  end)

  it("matches coreutils base64 on every byte value and odd lengths", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    for i = 0, 700 do bytes[#bytes + 1] = string.char((i * 37 + 11) % 256) end
    local all = table.concat(bytes)
    for _, len in ipairs({ 1, 2, 3, 255, 256, 957 }) do
      write(dir .. "/b64.bin", all:sub(1, len))
      local p = io.popen("base64 -w0 " .. quote(dir .. "/b64.bin"))
      local expected = p:read("a")
      p:close()
      assert.are.equal(expected, page.base64(all:sub(1, len)))
    end
  end)
end)

describe("cells", function()
  it("splits prose and code and keeps line numbers", function()
    local cells = parse.split(table.concat({
      "#!/usr/bin/env strata", -- 1
      "--[[md", -- 2
      "# Title", -- 3
      "]]", -- 4
      "local x = 1", -- 5
      "s = '--[[md not prose'", -- 6
      "-- %%", -- 7
      "", -- 8
      "print(x)", -- 9
      "--[==[md", -- 10
      "has ]] inside", -- 11
      "]==]", -- 12
    }, "\n"))
    assert.are.equal(4, #cells)
    assert.are.same({ "markdown", "# Title", 2 }, { cells[1].kind, cells[1].text, cells[1].line })
    assert.are.same({ "code", "local x = 1\ns = '--[[md not prose'", 5 },
      { cells[2].kind, cells[2].code, cells[2].line })
    assert.are.same({ "code", "print(x)", 9 }, { cells[3].kind, cells[3].code, cells[3].line })
    assert.are.same({ "markdown", "has ]] inside" }, { cells[4].kind, cells[4].text })
  end)

  it("turns top-level locals into shared names, not nested ones or <close>", function()
    assert.are.equal(" a, b = 1, 2\n function f() local y = 1 end\n c = nil;",
      parse.rewrite_locals("local a, b = 1, 2\nlocal function f() local y = 1 end\nlocal c"))
    assert.are.equal(" k  = 3\nlocal h <close> = nil\ndo local z = 1 end",
      parse.rewrite_locals("local k <const> = 3\nlocal h <close> = nil\ndo local z = 1 end"))
  end)

  it("returns the values of a trailing call, unless it ends in ;", function()
    assert.are.same({ "x = 1\nreturn P(f(x)\n)", true }, { parse.chunk("x = 1\nf(x)", "P") })
    assert.are.same({ "x = 1\nf(x);", false }, { parse.chunk("x = 1\nf(x);", "P") })
    assert.are.same({ "x = 1", false }, { parse.chunk("x = 1", "P") })
    assert.are.same({ "return P(f(\n  1)\n)", true }, { parse.chunk("f(\n  1)", "P") })
  end)
end)

describe("strata notebook", function()
  it("is built", function() assert.is_string(EXE, "STRATA_EXE must point at the built binary") end)

  local NOTEBOOK = [==[
--[[md
# Escapes <b> & "quotes"

Prose with *emphasis*.
]]
local answer = 42
print("answer", answer, "<script>alert(1)</script>")
io.write("written ", 1.5, "\n")
-- %%
local canvas = strata.zeros(4, 6, 3, "u8"):fill(200)
strata.grid.save(canvas, "tiny.png")
strata.notebook.image("tiny.png", { caption = "a <tiny> image" })
strata.notebook.table({ { "<x>", 1.25 } }, { header = { "name", "value" }, format = { false, "%.3f" } })
if answer == 42 then print("still shared") end
--[[md
The next cell fails.
]]
local function explode() error("boom <here>") end
explode()
-- %%
print("after the failure")
]==]

  it("renders prose, output, images, tables and the traceback; fails with 1", function()
    write(dir .. "/nb.lua", NOTEBOOK)
    local code, _, err = run({ "notebook", "nb.lua", "-o", "page.html" })
    assert.are.equal(1, code)
    contains(err, "1 failed")
    local html = assert(slurp(dir .. "/page.html"))
    -- prose, escaped
    contains(html, "<title>Escapes &lt;b&gt; &amp; &quot;quotes&quot;</title>")
    contains(html, "Escapes &lt;b&gt; &amp; &quot;quotes&quot;</h1>")
    contains(html, "<p>Prose with <em>emphasis</em>.</p>")
    -- output, escaped: the page itself has no script at all
    contains(cell_html(html, 1), "answer\t42\t&lt;script&gt;alert(1)&lt;/script&gt;\nwritten 1.5</pre>")
    lacks(html:lower(), "<script")
    -- self-contained: nothing is fetched
    lacks(html, "<link")
    lacks(html, 'src="http')
    -- the image, byte for byte as coreutils encodes the file
    local p = io.popen("base64 -w0 " .. quote(dir .. "/tiny.png"))
    local b64 = p:read("a")
    p:close()
    assert.truthy(#b64 > 20)
    contains(cell_html(html, 2), '<img src="data:image/png;base64,' .. b64 .. '" alt="a &lt;tiny&gt; image"')
    contains(cell_html(html, 2), "<td>&lt;x&gt;</td><td class=\"num\">1.250</td>")
    contains(cell_html(html, 2), "still shared")
    -- the failure: message, traceback with the notebook's line numbers
    local failed = cell_html(html, 3)
    contains(failed, 'class="cell code error"')
    contains(failed, "nb.lua:18: boom &lt;here&gt;")
    contains(failed, "stack traceback:")
    contains(failed, "nb.lua:19: in main chunk")
    lacks(failed, "xpcall")
    -- and the cell after it did not run
    local after = cell_html(html, 4)
    contains(after, 'class="cell code not-run"')
    lacks(after, "after the failure</pre>")
    -- written atomically: no temporary file left
    local p2 = io.popen("ls " .. quote(dir))
    local listing = p2:read("a")
    p2:close()
    lacks(listing, ".tmp")
  end)

  it("runs the rest after a failure with --keep-going, still exiting 1", function()
    write(dir .. "/nb.lua", NOTEBOOK)
    local code = run({ "notebook", "nb.lua", "--keep-going", "-q" })
    assert.are.equal(1, code)
    local html = assert(slurp(dir .. "/nb.html"))
    contains(cell_html(html, 4), "<pre class=\"out\">after the failure</pre>")
  end)

  it("exits 0 when every cell runs, shows trailing values, honours stop", function()
    write(dir .. "/ok.lua", table.concat({
      "local t = { n = 3 }",
      "string.rep('<ab>', t.n)",
      "-- %%",
      "math.max(1, 7);",
      "-- %%",
      "strata.notebook.stop('enough <for> now')",
      "-- %%",
      "error('never reached')",
    }, "\n"))
    local code, _, err = run({ "notebook", "ok.lua", "-o", "ok.html" })
    assert.are.equal(0, code, err)
    local html = assert(slurp(dir .. "/ok.html"))
    contains(cell_html(html, 1), '<pre class="out value">&lt;ab&gt;&lt;ab&gt;&lt;ab&gt;</pre>')
    lacks(cell_html(html, 2), "outputs")
    contains(cell_html(html, 3), "notebook stopped: enough &lt;for&gt; now")
    contains(cell_html(html, 4), 'class="cell code stopped"')
    lacks(html, "never reached</pre>")
  end)

  it("reports a syntax error in its cell with the file's line", function()
    write(dir .. "/syntax.lua", "print('one')\n-- %%\nlocal = 3\n")
    local code = run({ "notebook", "syntax.lua", "-q" })
    assert.are.equal(1, code)
    local html = assert(slurp(dir .. "/syntax.html"))
    contains(cell_html(html, 1), "<pre class=\"out\">one</pre>")
    contains(cell_html(html, 2), "syntax.lua:3:")
  end)

  it("fails cleanly on usage errors and unreadable files", function()
    assert.are.equal(2, (run({ "notebook" })))
    assert.are.equal(2, (run({ "notebook", "a.lua", "--bogus" })))
    local code, _, err = run({ "notebook", "missing.lua" })
    assert.are.equal(1, code)
    contains(err, "cannot read notebook")
    write(dir .. "/ok2.lua", "print(1)\n")
    code, _, err = run({ "notebook", "ok2.lua", "-o", dir .. "/no/such/dir/x.html" })
    assert.are.equal(1, code)
    contains(err, "cannot write")
  end)

  it("runs as a plain script, with text stand-ins for images and tables", function()
    write(dir .. "/plain.lua", table.concat({
      "--[[md", "# prose is a comment", "]]",
      "strata.grid.save(strata.zeros(2, 2, 3, 'u8'), 'p.png')",
      "strata.notebook.image('p.png')",
      "strata.notebook.table({ { 'a', 10 }, { 'bb', 2.5 } }, { header = { 'k', 'v' }, format = '%.2f' })",
    }, "\n"))
    local code, out = run({ "plain.lua" })
    assert.are.equal(0, code)
    assert.are.equal("[image: p.png]\nk   v\n--  ----\na     10\nbb  2.50\n", out)
  end)

  it("has notebooks whose code cells all compile", function()
    for _, name in ipairs({ "tour.lua", "explain_cifar10.lua" }) do
      local source = assert(slurp(ROOT .. "/notebooks/" .. name), "notebooks/" .. name .. " is missing")
      local code = 0
      for _, cell in ipairs(parse.split(source)) do
        if cell.kind == "code" then
          code = code + 1
          assert(load(parse.chunk(cell.code, "P"), "=" .. name .. ":" .. cell.line, "t", {}))
        end
      end
      assert.is_true(code >= 5, name .. " has code cells")
    end
  end)

  it("stops the explainer notebook with instructions when there is no bundle", function()
    local code, _, err = run({ "notebook", ROOT .. "/notebooks/explain_cifar10.lua", "-o", "explain.html", "--",
      dir .. "/no-such-work-dir" })
    assert.are.equal(0, code, err)
    local html = assert(slurp(dir .. "/explain.html"))
    contains(html, "<strong>No explainer found</strong>")
    contains(html, "scripts/explain.sh")
    contains(html, 'class="cell code stopped"')
  end)
end)
