-- The Lua tensor API: creation, shapes, 1-based views and element access,
-- arithmetic and reductions against values worked out by hand or by plain
-- Lua loops, and the error messages of misuse.
local strata = require "strata"

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * (1 + math.abs(b)) end

-- Plain nested-table helpers: the independent reference.
local function same_table(a, b, tol)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return close(a, b, tol) end
  if #a ~= #b then return false end
  for i = 1, #a do
    if not same_table(a[i], b[i], tol) then return false end
  end
  return true
end

local function assert_values(t, expected, tol)
  local got = t:totable()
  assert.is_true(same_table(got, expected, tol),
    "values differ:\n got " .. require("strata.repl").format(got) .. "\nwant " .. require("strata.repl").format(expected))
end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("creation", function()
  it("builds from nested tables and back", function()
    local t = strata.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({2, 3}, t:shape())
    assert.are.equal("f32", t:dtype())
    assert.are.equal(6, t:numel())
    assert.are.equal(2, t:ndim())
    assert.are.equal(2, #t)
    assert.are.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
  end)

  it("keeps dtypes and integer values", function()
    local t = strata.tensor({{1, -2}, {3, 4}}, "i64")
    assert.are.equal("i64", t:dtype())
    assert.are.equal(math.type(t:get(1, 2)), "integer")
    assert.are.equal(-2, t:get(1, 2))
    assert.are.equal(255, strata.tensor({300}, "u8"):get(1)) -- saturates
    assert.are.equal(3.5, strata.tensor(3.5, "f64"):item())
    assert.are.same({0}, strata.tensor{}:shape())
  end)

  it("zeros, ones, full take a shape as integers or a table", function()
    assert_values(strata.zeros(2, 2), {{0, 0}, {0, 0}})
    assert_values(strata.ones({3}, "f64"), {1, 1, 1})
    assert.are.equal("f64", strata.ones({3}, "f64"):dtype())
    assert_values(strata.full({2}, 7.5), {7.5, 7.5})
    assert.are.same({}, strata.zeros():shape())
  end)

  it("arange includes its end like a numeric for", function()
    assert_values(strata.arange(4), {1, 2, 3, 4})
    assert_values(strata.arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75, 1})
    assert_values(strata.arange(5, 1, -2), {5, 3, 1})
    assert.are.same({0}, strata.arange(3, 1):shape())
    assert.are.equal(11, strata.arange(0, 1, 0.1):numel())
    assert.are.equal("i64", strata.arange(1, 3, "i64"):dtype())
  end)

  it("rand and randn draw from an explicit rng, reproducibly", function()
    local a = strata.rand(strata.rng(7), 1000)
    local b = strata.rand(strata.rng(7), {1000})
    assert.is_true(a:equal(b))
    local lo, hi, sum = 1, 0, 0
    for i = 1, 1000 do
      local x = a:get(i)
      lo, hi, sum = math.min(lo, x), math.max(hi, x), sum + x
    end
    assert.is_true(lo >= 0 and hi < 1)
    assert.is_true(math.abs(sum / 1000 - 0.5) < 0.05)
    local n = strata.randn(strata.rng(1), 4000, "f64")
    local m, s = 0, 0
    for i = 1, 4000 do m = m + n:get(i) end
    m = m / 4000
    for i = 1, 4000 do s = s + (n:get(i) - m) ^ 2 end
    assert.is_true(math.abs(m) < 0.06 and math.abs(math.sqrt(s / 3999) - 1) < 0.06)
  end)
end)

describe("rng objects", function()
  it("permutation and sample give 1-based distinct positions", function()
    local r = strata.rng(3)
    local p = r:permutation(10):totable()
    table.sort(p)
    assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, p)
    local s = r:sample(20, 5):totable()
    local seen = {}
    for _, v in ipairs(s) do
      assert.is_true(v >= 1 and v <= 20 and not seen[v])
      seen[v] = true
    end
    for _ = 1, 200 do
      local k = r:integer(3)
      assert.is_true(k >= 1 and k <= 3)
      local u = r:uniform(2, 4)
      assert.is_true(u >= 2 and u < 4)
    end
  end)

  it("the same seed gives the same stream", function()
    local a, b = strata.rng(42), strata.rng(42)
    for _ = 1, 10 do assert.are.equal(a:normal(), b:normal()) end
  end)
end)

describe("views", function()
  local t
  before_each(function() t = strata.arange(12):reshape(3, 4) end)

  it("slice is 1-based with an inclusive end and negative counting", function()
    assert_values(t:slice(1, 2, 3), {{5, 6, 7, 8}, {9, 10, 11, 12}})
    assert_values(t:slice(2, 2, -2), {{2, 3}, {6, 7}, {10, 11}})
    assert_values(t:slice(2, 1, -1, 2), {{1, 3}, {5, 7}, {9, 11}})
    assert_values(t:slice(1, -1), {{9, 10, 11, 12}})
    assert.are.same({2, 4}, t:slice(1, 2, 99):shape()) -- clamped
    assert.are.same({0, 4}, t:slice(1, 3, 2):shape())
  end)

  it("select removes a dimension", function()
    assert_values(t:select(1, 2), {5, 6, 7, 8})
    assert_values(t:select(2, -1), {4, 8, 12})
  end)

  it("transpose and permute move dimensions without copying", function()
    local tt = t:transpose()
    assert.are.same({4, 3}, tt:shape())
    assert.is_false(tt:is_contiguous())
    assert.are.equal(t:get(2, 3), tt:get(3, 2))
    local c = strata.arange(24):reshape(2, 3, 4)
    local p = c:permute(3, 1, 2)
    assert.are.same({4, 2, 3}, p:shape())
    for i = 1, 2 do
      for j = 1, 3 do
        for k = 1, 4 do assert.are.equal(c:get(i, j, k), p:get(k, i, j)) end
      end
    end
  end)

  it("views share storage with their parent", function()
    t:select(1, 1):fill(0)
    assert_values(t:select(1, 1), {0, 0, 0, 0})
    t:slice(2, 2, 2):assign(strata.full({3, 1}, -1))
    assert.are.equal(-1, t:get(3, 2))
    t:set(3, 4, 100)
    assert.are.equal(100, t:reshape(12):get(12))
  end)

  it("reshape of a non-contiguous view needs contiguous() first", function()
    local msg = error_of(function() return t:transpose():reshape(12) end)
    assert.truthy(msg:find("not contiguous", 1, true))
    assert_values(t:transpose():contiguous():reshape(12), {1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12})
    assert_values(t:reshape(-1, 6):select(1, 2), {7, 8, 9, 10, 11, 12})
  end)

  it("a view outlives its parent", function()
    local v = strata.arange(1000):reshape(10, 100):select(1, 10):slice(1, 98)
    collectgarbage()
    collectgarbage()
    assert_values(v, {998, 999, 1000})
  end)

  it("clone and to copy", function()
    local c = t:clone()
    c:fill(0)
    assert.are.equal(1, t:get(1, 1))
    local d = t:to("f64")
    assert.are.equal("f64", d:dtype())
    assert.are.same(t:totable(), d:totable())
  end)
end)

describe("arithmetic", function()
  local a, b
  before_each(function()
    a = strata.tensor{{1, 2}, {3, 4}}
    b = strata.tensor{{10, 20}, {30, 40}}
  end)

  it("works with tensors and numbers on either side", function()
    assert_values(a + b, {{11, 22}, {33, 44}})
    assert_values(b - a, {{9, 18}, {27, 36}})
    assert_values(a * b, {{10, 40}, {90, 160}})
    assert_values(b / a, {{10, 10}, {10, 10}})
    assert_values(a + 1, {{2, 3}, {4, 5}})
    assert_values(1 + a, {{2, 3}, {4, 5}})
    assert_values(10 - a, {{9, 8}, {7, 6}})
    assert_values(a - 1, {{0, 1}, {2, 3}})
    assert_values(2 * a, {{2, 4}, {6, 8}})
    assert_values(12 / a, {{12, 6}, {4, 3}})
    assert_values(a / 2, {{0.5, 1}, {1.5, 2}})
    assert_values(-a, {{-1, -2}, {-3, -4}})
    assert_values(a ^ 2, {{1, 4}, {9, 16}})
  end)

  it("broadcasts rows and columns", function()
    assert_values(a + strata.tensor{100, 200}, {{101, 202}, {103, 204}})
    assert_values(a * strata.tensor{{1}, {-1}}, {{1, 2}, {-3, -4}})
  end)

  it("in-place variants return the tensor", function()
    local c = a:clone()
    assert.are.equal(c, c:add_(1))
    assert_values(c, {{2, 3}, {4, 5}})
    c:mul_(strata.tensor{1, 10}):sub_(2):div_(2)
    assert_values(c, {{0, 14}, {1, 24}})
  end)

  it("elementwise functions", function()
    local x = strata.tensor({0.5, 1, 4}, "f64")
    local ex, lg, sq = x:exp(), x:log(), x:sqrt()
    for i, v in ipairs({0.5, 1, 4}) do
      assert.is_true(close(ex:get(i), math.exp(v), 1e-12))
      assert.is_true(close(lg:get(i), math.log(v), 1e-12))
      assert.is_true(close(sq:get(i), math.sqrt(v), 1e-12))
    end
    assert_values(strata.tensor{-1, 2}:abs(), {1, 2})
    assert_values(strata.tensor{-1, 2}:relu(), {0, 2})
    assert_values(strata.tensor{-5, 0, 5}:clamp(-1, 1), {-1, 0, 1})
    assert_values(strata.tensor{-5, 0, 5}:clamp(nil, 1), {-5, 0, 1})
  end)

  it("== is identity, not value equality", function()
    local c = a:clone()
    assert.is_false(a == c)
    assert.is_true(a:equal(c))
    assert.is_true(a == a)
  end)
end)

describe("reductions", function()
  local t = strata.tensor{{1, 5, 2}, {7, 0, 3}}

  it("over everything give numbers", function()
    assert.are.equal(18, t:sum())
    assert.are.equal(3, t:mean())
    assert.are.equal(7, t:max())
    assert.are.equal(0, t:min())
    assert.are.equal(4, t:argmax()) -- flat, 1-based
    assert.are.equal(5, t:argmin())
    -- population variance by hand: mean 3, squares 4+4+1+16+9+0 = 34
    assert.is_true(close(t:var(), 34 / 6))
    assert.is_true(close(t:var(nil, 1), 34 / 5))
  end)

  it("along a 1-based dim", function()
    assert_values(t:sum(1), {8, 5, 5})
    assert_values(t:sum(2), {8, 10})
    assert.are.same({2, 1}, t:sum(2, true):shape())
    assert_values(t:max(2), {5, 7})
    assert_values(t:argmax(2), {2, 1})
    assert_values(t:argmin(-1), {1, 2})
    assert_values(t:mean(1), {4, 2.5, 2.5})
  end)

  it("topk returns 1-based indices that gather accepts", function()
    local v, i = t:topk(2)
    assert_values(v, {{5, 2}, {7, 3}})
    assert_values(i, {{2, 3}, {1, 3}})
    assert.is_true(t:gather(2, i):equal(v))
    local sv, si = t:topk(1, 1, false)
    assert_values(sv, {{1, 0, 2}})
    assert_values(si, {{1, 2, 1}})
  end)

  it("index_select takes tables or tensors of 1-based positions", function()
    assert_values(t:index_select(2, {3, 1, 3}), {{2, 1, 2}, {3, 7, 3}})
    assert_values(t:index_select(1, strata.tensor({2}, "i32")), {{7, 0, 3}})
  end)
end)

describe("linear algebra", function()
  it("matmul agrees with a plain triple loop", function()
    local rng = strata.rng(5)
    local a, b = strata.randn(rng, 7, 5, "f64"), strata.randn(rng, 5, 3, "f64")
    local c = a:matmul(b)
    assert.are.same({7, 3}, c:shape())
    for i = 1, 7 do
      for j = 1, 3 do
        local s = 0
        for k = 1, 5 do s = s + a:get(i, k) * b:get(k, j) end
        assert.is_true(close(c:get(i, j), s, 1e-12))
      end
    end
    assert.is_true(strata.matmul(a:transpose(), a):allclose(a:transpose():contiguous():matmul(a), 1e-12))
  end)

  it("concat joins along a dim", function()
    local a, b = strata.tensor{{1, 2}}, strata.tensor{{3, 4}}
    assert_values(strata.concat({a, b}), {{1, 2}, {3, 4}})
    assert_values(strata.concat({a, b}, 2), {{1, 2, 3, 4}})
  end)

  it("eigh of a 2x2 symmetric matrix", function()
    -- [[2,1],[1,2]] has eigenvalues 1 and 3
    local w, v = strata.eigh(strata.tensor({{2, 1}, {1, 2}}, "f64"))
    assert_values(w, {1, 3}, 1e-12)
    assert.is_true(close(math.abs(v:get(1, 2)), math.sqrt(0.5), 1e-12))
  end)
end)

describe("printing", function()
  it("shows dtype, shape and values", function()
    assert.are.equal("tensor f32 [2,3]\n[[1, 2, 3],\n [4, 5, 6]]", tostring(strata.tensor{{1, 2, 3}, {4, 5, 6}}))
    assert.are.equal("tensor i64 [8]\n[1, 2, 3, ..., 6, 7, 8]", tostring(strata.arange(1, 8, "i64")))
    assert.are.equal("tensor f64 []\n0.5", tostring(strata.tensor(0.5, "f64")))
  end)
end)

describe("misuse", function()
  local t = strata.zeros(2, 3)

  it("names the argument", function()
    assert.are.equal("bad argument #2 to 'reshape' (shape: expected integers, got string)",
      error_of(function() return t:reshape(2, "x") end):gsub("^.-:%d+: ", ""))
    assert.truthy(error_of(function() return t:slice(3, 1, 2) end):find("bad argument #1 to 'slice' (dim: 3 is out of range for a 2-d tensor", 1, true))
    assert.truthy(error_of(function() return t:get(3, 1) end):find("index 3 out of range for dimension 1 of size 2", 1, true))
    assert.truthy(error_of(function() return t:slice(1, 0, 1) end):find("indices are 1-based", 1, true))
    assert.truthy(error_of(function() return t:to("f16") end):find("dtype: expected one of", 1, true))
    assert.truthy(error_of(function() return t + "x" end):find("tensor expected, got string", 1, true))
    assert.truthy(error_of(function() return t:get(1) end):find("2 indices expected", 1, true))
    assert.truthy(error_of(strata.tensor, {{1, 2}, {3}}):find("ragged", 1, true))
    assert.truthy(error_of(strata.tensor, {{1, "a"}}):find("expected numbers", 1, true))
    assert.truthy(error_of(function() return t:index_select(1, {3}) end):find("outside 1..2", 1, true))
  end)

  it("reports core failures with both shapes", function()
    local msg = error_of(function() return t + strata.zeros(3, 2) end)
    assert.truthy(msg:find("[2,3]", 1, true) and msg:find("[3,2]", 1, true))
    msg = error_of(function() return t:matmul(t) end)
    assert.truthy(msg:find("[2,3]", 1, true))
  end)

  it("integer tensors are refused by float math with a hint", function()
    assert.truthy(error_of(function() return strata.arange(3, "i64"):sum() end):find("i64", 1, true))
  end)
end)
