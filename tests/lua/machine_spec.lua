-- strata.cpu_count() and the OpenBLAS thread default: loading Strata keeps
-- OpenBLAS on one thread (its own threads would oversubscribe the cores
-- Strata's lanes already use) unless OPENBLAS_NUM_THREADS is set.
local h = require "spec_helpers"
local EXE = os.getenv("STRATA_EXE")

-- What `strata -e CHUNK` prints, with OPENBLAS_NUM_THREADS set to `blas`
-- (nil: unset).
local function run(chunk, blas)
  local env = blas and ("OPENBLAS_NUM_THREADS=" .. blas) or "-u OPENBLAS_NUM_THREADS"
  local p = assert(io.popen(("env %s %s -e %s 2>&1"):format(env, h.quote(EXE), h.quote(chunk))))
  local out = p:read("a")
  p:close()
  return out
end

describe("the machine area", function()
  it("counts the usable cores", function()
    local n = tonumber(run("print(strata.cpu_count())"))
    assert.is_true(n ~= nil and n >= 1 and math.type(n) == "integer", "cpu_count")
    local p = io.popen("nproc")
    local nproc = tonumber(p:read("a"))
    p:close()
    assert.are.equal(nproc, n)
  end)

  it("keeps OpenBLAS single-threaded by default", function()
    assert.are.equal("1\n", run("print(strata.blas_threads())"))
  end)

  it("leaves an explicit OPENBLAS_NUM_THREADS alone", function()
    assert.are.equal("2\n", run("print(strata.blas_threads())", 2))
  end)
end)
