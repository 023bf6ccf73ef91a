-- Lifetimes of tensor boxes: __close and __gc share one idempotent free,
-- views keep their storage alive, and creating and dropping many tensors
-- keeps memory flat (Lua heap and resident set size).
local strata = require "strata"
local stress = require "gc_stress"

local PAGE = 4096 -- /proc/self/statm counts pages; x86-64 Linux uses 4 KiB

local function rss_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * PAGE
end

local function full_collect()
  collectgarbage()
  collectgarbage()
end

describe("freeing", function()
  it("<close> frees at the end of the block", function()
    local outside
    do
      local t <close> = strata.zeros(3)
      outside = t
      assert.are.equal(0, t:sum())
    end
    assert.are.equal("tensor (freed)", tostring(outside))
    local ok, err = pcall(outside.sum, outside)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("tensor has been freed", 1, true))
  end)

  it("free, __close and __gc can all run on the same box", function()
    local t = strata.ones(5)
    t:free()
    t:free()
    do local c <close> = t end
    t = nil
    full_collect() -- __gc on an already freed box
  end)

  it("closes on error exits too", function()
    local outside
    pcall(function()
      local t <close> = strata.zeros(2)
      outside = t
      error("leaving")
    end)
    assert.are.equal("tensor (freed)", tostring(outside))
  end)

  it("a view survives its parent's close and collection", function()
    local v
    do
      local p <close> = strata.arange(10)
      v = p:slice(1, 2, 3)
    end
    full_collect()
    assert.are.same({2, 3}, v:totable())
  end)
end)

describe("memory", function()
  it("stays flat over 10^5 tensors created and dropped", function()
    stress(2000) -- warm up allocator pools
    full_collect()
    local rss0, heap0 = rss_bytes(), collectgarbage("count")
    local t0 = os.clock()
    stress(100000)
    full_collect()
    local rss1, heap1 = rss_bytes(), collectgarbage("count")
    print(string.format("\n  gc stress: %.1f s, RSS %+.1f MiB, Lua heap %+.0f KiB", os.clock() - t0,
      (rss1 - rss0) / 2 ^ 20, heap1 - heap0))
    -- each iteration allocates > 1.5 KiB of C memory, so a leak would add
    -- well over 150 MiB
    assert.is_true(rss1 - rss0 < 16 * 2 ^ 20, "RSS grew by " .. (rss1 - rss0) .. " bytes")
    assert.is_true(heap1 - heap0 < 1024, "Lua heap grew by " .. (heap1 - heap0) .. " KiB")
  end)

  it("large tensors dropped in a loop are collected without explicit collectgarbage", function()
    full_collect()
    local rss0, peak = rss_bytes(), 0
    for _ = 1, 100 do
      local t = strata.zeros(1024, 1024) -- 4 MiB each, 400 MiB in all
      t:fill(1)
      peak = math.max(peak, rss_bytes() - rss0)
    end
    print(string.format("\n  peak RSS over 100 x 4 MiB: %.1f MiB", peak / 2 ^ 20))
    assert.is_true(peak < 64 * 2 ^ 20, "peak RSS growth " .. peak .. " bytes")
  end)
end)
