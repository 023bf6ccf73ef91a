-- The `strata` executable (STRATA_EXE) driven through pipes: options,
-- scripts with arguments and exit codes, tracebacks, the interactive loop
-- on a non-terminal stdin; and the REPL's completion and formatting.
local h = require "spec_helpers"
local EXE = os.getenv("STRATA_EXE")

local dir
setup(function() dir = h.tmpdir() end)
teardown(function() h.rmdir(dir) end)
local quote, write = h.quote, h.write
local function slurp(path) return assert(h.slurp(path)) end

-- Runs the executable with arguments and standard input; returns the exit
-- code, stdout and stderr.
local function run(args, input)
  write(dir .. "/in", input or "")
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  local cmd = string.format("%s %s < %s > %s 2> %s", quote(EXE), table.concat(words, " "), dir .. "/in",
    dir .. "/out", dir .. "/err")
  local _, _, code = os.execute(cmd)
  return code, slurp(dir .. "/out"), slurp(dir .. "/err")
end

describe("the strata executable", function()
  it("is built", function() assert.is_string(EXE, "STRATA_EXE must point at the built binary") end)

  it("prints its version", function()
    local code, out = run({ "-v" })
    assert.are.equal(0, code)
    assert.truthy(out:match("^Strata %d+%.%d+%.%d+ %(Lua 5%.4"))
  end)

  it("runs -e chunks in order with strata preloaded", function()
    local code, out = run({ "-e", "x = strata.tensor{1, 2, 3}:sum()", "-e", "print(x, type(strata.zeros))" })
    assert.are.equal(0, code)
    assert.are.equal("6.0\tfunction\n", out)
  end)

  it("passes script arguments like lua does", function()
    local script = dir .. "/args.lua"
    write(script, "print(select('#', ...), ...)\nprint(arg[0] == " .. string.format("%q", script) ..
      ", arg[1], arg[2], arg[-1] ~= nil)\n")
    local code, out = run({ script, "a", "b c" })
    assert.are.equal(0, code)
    assert.are.equal("2\ta\tb c\ntrue\ta\tb c\ttrue\n", out)
    code, out = run({ "run", script, "z" })
    assert.are.equal(0, code)
    assert.are.equal("1\tz\ntrue\tz\tnil\ttrue\n", out)
  end)

  it("exits with the script's os.exit code", function()
    local script = dir .. "/exit.lua"
    write(script, "os.exit(7)")
    assert.are.equal(7, (run({ script })))
  end)

  it("exits 1 with a traceback when the script fails", function()
    local script = dir .. "/fail.lua"
    write(script, "local function inner() error('bad thing') end\nlocal function outer() inner() end\nouter()\n")
    local code, out, err = run({ script })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("fail.lua:1: bad thing", 1, true))
    assert.truthy(err:find("stack traceback:", 1, true))
    assert.truthy(err:find("in local 'inner'", 1, true) or err:find("in upvalue 'inner'", 1, true))
  end)

  it("exits 1 for a missing script or a syntax error", function()
    local code, _, err = run({ dir .. "/missing.lua" })
    assert.are.equal(1, code)
    assert.truthy(err:find("missing.lua", 1, true))
    write(dir .. "/syntax.lua", "x = = 1")
    code, _, err = run({ dir .. "/syntax.lua" })
    assert.are.equal(1, code)
    assert.truthy(err:find("syntax.lua:1:", 1, true))
  end)

  it("exits 2 for usage errors", function()
    local code, out, err = run({ "-x" })
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("usage:", 1, true))
    assert.are.equal(2, (run({ "-e" })))
    assert.are.equal(2, (run({ "run" })))
  end)

  it("exits 1 when an -e chunk fails", function()
    local code, _, err = run({ "-e", "error('nope')" })
    assert.are.equal(1, code)
    assert.truthy(err:find("nope", 1, true))
  end)

  it("runs piped standard input as a script when there is no script", function()
    local code, out = run({}, "local t = strata.ones(2, 2)\nprint(t:sum())\n")
    assert.are.equal(0, code)
    assert.are.equal("4.0\n", out)
    code = run({}, "error('x')\n")
    assert.are.equal(1, code)
  end)
end)

describe("the interactive loop through a pipe", function()
  it("prints expressions, several values, tables and tensors", function()
    local code, out = run({ "-i" }, table.concat({
      "1 + 1",
      "= 'a', 2, nil",
      "{1, 2, x = 'y'}",
      "strata.tensor{{1, 2}, {3, 4}}",
      "local z = 5", -- a statement prints nothing
      "",
    }, "\n"))
    assert.are.equal(0, code)
    assert.are.equal("2\na\t2\tnil\n{1, 2, x = \"y\"}\ntensor f32 [2,2]\n[[1, 2],\n [3, 4]]\n", out)
  end)

  it("continues incomplete chunks over several lines", function()
    local _, out = run({ "-i" }, table.concat({
      "function sq(x)",
      "  return x * x",
      "end",
      "sq(",
      "  7)",
      "for i = 1, 2 do",
      "  print('row', i)",
      "end",
      "",
    }, "\n"))
    assert.are.equal("49\nrow\t1\nrow\t2\n", out)
  end)

  it("reports errors with a traceback and keeps going", function()
    local code, out, err = run({ "-i" }, "error('first')\nstrata.zeros(2):reshape(3)\nprint('still here')\n")
    assert.are.equal(0, code)
    assert.are.equal("still here\n", out)
    assert.truthy(err:find("first", 1, true))
    assert.truthy(err:find("stack traceback", 1, true))
    assert.truthy(err:find("reshape: cannot view [2] (2 elements) as [3]", 1, true))
  end)

  it("reports a chunk cut off by the end of input", function()
    local _, _, err = run({ "-i" }, "for i = 1, 2 do\n")
    assert.truthy(err:find("end of input", 1, true))
  end)

  it("runs the script first with -i", function()
    local script = dir .. "/setup.lua"
    write(script, "answer = 42\n")
    local _, out = run({ "-i", script }, "answer\n")
    assert.are.equal("42\n", out)
  end)
end)

describe("completion and formatting (strata.repl)", function()
  local repl = require "strata.repl"
  local strata = require "strata"

  local function contains(list, word)
    for _, w in ipairs(list) do
      if w == word then return true end
    end
    return false
  end

  it("completes globals, fields, and methods of userdata", function()
    _G.strata = strata
    _G.sample_tensor = strata.zeros(2)
    assert.is_true(contains(repl.complete("stri"), "string"))
    assert.is_true(contains(repl.complete("wh"), "while"))
    assert.is_true(contains(repl.complete("string.fo"), "string.format"))
    local z = repl.complete("strata.ze")
    assert.are.same({ "strata.zeros" }, z)
    assert.is_true(contains(repl.complete("strata.d"), "strata.data") or not package.searchpath("strata.data", package.path))
    local m = repl.complete("sample_tensor:s")
    for _, name in ipairs({ "sample_tensor:shape", "sample_tensor:slice", "sample_tensor:sum", "sample_tensor:select" }) do
      assert.is_true(contains(m, name), name)
    end
    assert.are.same({}, repl.complete("nosuchthing.x"))
    _G.sample_tensor, _G.strata = nil, nil
  end)

  it("never runs __index functions while completing", function()
    local called = false
    _G.trap = setmetatable({}, { __index = function() called = true end })
    repl.complete("trap.x")
    repl.complete("trap.a.b")
    assert.is_false(called)
    _G.trap = nil
  end)

  it("formats tables one level deep", function()
    assert.are.equal('{1, "two", {...}, k = true}', repl.format({ 1, "two", { 3 }, k = true }))
    assert.are.equal("{}", repl.format({}))
    assert.are.equal("plain", repl.format("plain"))
  end)
end)
