--- strata.bundle: a directory of data files saved atomically and checked
-- on load (docs/explainer.md, "The bundle").
--
--   local w = bundle.writer("work/cifar10/bundle", "strata.ac/1")
--   w:json("config.json", {...})
--   w:npy("layer1.embeddings.npy", z)
--   w:copy("layer1.clustering.safetensors", checkpoint_path)
--   local path = w:file("figures/similar.png")   -- write it yourself
--   assert(w:commit())
--
--   local b, err = bundle.open("work/cifar10/bundle", "strata.ac/1")
--   local cfg = b:json("config.json")            -- or nil, message
--   local z = b:npy("layer1.embeddings.npy", {dtype = "f32", shape = {-1, 20}})
--
-- Saving: every file goes into a fresh temporary directory beside the
-- target; the manifest (every file's size and SHA-256) is written last;
-- then the directory is renamed into place. An existing bundle at the
-- target is moved aside first and removed afterwards (only the files its
-- manifest lists), so a reader sees the old bundle, the new one, or (for
-- a moment between two renames) none, never a mixture.
--
-- Loading checks, before anything is parsed: the manifest is strict JSON
-- of the expected kind; every listed path is a plain relative name inside
-- the bundle; every file exists with the listed size and checksum.
-- Failures are nil plus a message naming the bundle and the file. Nothing
-- is ever executed: JSON goes through the core's strict parser, arrays
-- through the .npy reader.
local core = require "strata.core"

local M = {}

M.FORMAT = "strata.bundle/1"
M.MANIFEST = "manifest.json"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- A relative path of plain names: letters, digits, '_', '-', '.', at most
-- one directory level, no '.' or '..' components.
local function safe_relpath(rel)
  if type(rel) ~= "string" or #rel == 0 or #rel > 200 then return false end
  local parts = 0
  for part in (rel .. "/"):gmatch("([^/]*)/") do
    parts = parts + 1
    if part == "" or part == "." or part == ".." or not part:match("^[%w_%-%.]+$") then return false end
  end
  return parts <= 2
end
M.safe_relpath = safe_relpath

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function write_all(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok then return nil, werr end
  if not cok then return nil, cerr end
  return true
end

----------------------------------------------------------------- writing

local Writer = {}
Writer.__index = Writer

local function unique_suffix()
  return core.sha256(tostring({}) .. os.time() .. os.clock() .. math.random()):sub(1, 12)
end

--- A writer for a bundle of `kind` (e.g. "strata.ac/1") at `path`.
-- Returns the writer, or nil and a message.
function M.writer(path, kind)
  if type(path) ~= "string" or path == "" then error("bad argument #1 to 'writer' (path: string expected)", 2) end
  if type(kind) ~= "string" then error("bad argument #2 to 'writer' (kind: string expected)", 2) end
  path = path:gsub("/+$", "")
  local tmp = path .. ".tmp-" .. unique_suffix()
  local ok, err = core.mkdir(tmp)
  if not ok then return nil, "bundle '" .. path .. "': " .. err end
  return setmetatable({ target = path, tmp = tmp, kind = kind, files = {}, listed = {}, dirs = {} }, Writer)
end

--- The temporary path to write `rel` to (the caller writes the file);
-- the file is added to the manifest.
function Writer:file(rel)
  if not safe_relpath(rel) or rel == M.MANIFEST then
    error(("bundle: '%s' is not a valid file name inside a bundle"):format(tostring(rel)), 2)
  end
  if self.listed[rel] then error(("bundle: '%s' was added twice"):format(rel), 2) end
  local dir = rel:match("^([^/]+)/")
  if dir and not self.dirs[dir] then
    assert(core.mkdir(self.tmp .. "/" .. dir))
    self.dirs[dir] = true
  end
  self.listed[rel] = true
  self.files[#self.files + 1] = rel
  return self.tmp .. "/" .. rel
end

local function check(ok, err, rel)
  if not ok then error(("bundle: cannot write '%s': %s"):format(rel, tostring(err)), 3) end
  return true
end

function Writer:write(rel, text)
  local ok, err = write_all(self:file(rel), text)
  return check(ok, err, rel)
end

function Writer:json(rel, value) return self:write(rel, core.json_encode(value, true) .. "\n") end

function Writer:npy(rel, t)
  local ok, err = core.save_npy(self:file(rel), t)
  return check(ok, err, rel)
end

function Writer:copy(rel, src)
  local data, err = read_all(src)
  check(data, err, rel)
  return self:write(rel, data)
end

-- Removes the files a manifest lists, their directories and `dir` itself.
local function remove_listed(dir, files)
  local subdirs = {}
  for _, rel in ipairs(files) do
    os.remove(dir .. "/" .. rel)
    local sub = rel:match("^([^/]+)/")
    if sub then subdirs[sub] = true end
  end
  os.remove(dir .. "/" .. M.MANIFEST)
  for sub in pairs(subdirs) do core.rmdir(dir .. "/" .. sub) end
  return core.rmdir(dir)
end

--- Drops everything written so far.
function Writer:abort()
  if self.tmp then remove_listed(self.tmp, self.files) end
  self.tmp = nil
end

-- The file list of the bundle at path, when there is one (or nil).
local function listed_files(path)
  local text = read_all(path .. "/" .. M.MANIFEST)
  local m = text and core.json_decode(text)
  if type(m) ~= "table" or type(m.files) ~= "table" then return nil end
  local out = {}
  for i, f in ipairs(m.files) do
    if type(f) ~= "table" or not safe_relpath(f.path) then return nil end
    out[i] = f.path
  end
  return out
end

--- Writes the manifest and moves the bundle into place. Returns the
-- bundle's path, or nil and a message (the temporary files are removed).
-- `extra` (optional) adds members to the manifest (e.g. created = ...).
function Writer:commit(extra)
  if not self.tmp then error("bundle: this writer was already committed or aborted", 2) end
  local entries = {}
  for i, rel in ipairs(self.files) do
    local hex, size = core.sha256_file(self.tmp .. "/" .. rel)
    if not hex then
      self:abort()
      return nil, ("bundle '%s': %s was never written (%s)"):format(self.target, rel, size)
    end
    entries[i] = { path = rel, bytes = size, sha256 = hex }
  end
  local manifest = { format = M.FORMAT, kind = self.kind, files = entries }
  for k, v in pairs(extra or {}) do manifest[k] = v end
  local ok, err = write_all(self.tmp .. "/" .. M.MANIFEST, core.json_encode(manifest, true) .. "\n")
  if not ok then
    self:abort()
    return nil, ("bundle '%s': cannot write the manifest: %s"):format(self.target, err)
  end
  -- An existing bundle is moved aside; anything else at the target is kept.
  local old
  if exists(self.target .. "/" .. M.MANIFEST) then
    old = self.target .. ".old-" .. unique_suffix()
    local moved, merr = os.rename(self.target, old)
    if not moved then
      self:abort()
      return nil, ("bundle '%s': cannot move the old bundle aside: %s"):format(self.target, merr)
    end
  end
  local renamed, rerr = os.rename(self.tmp, self.target)
  if not renamed then
    if old then os.rename(old, self.target) end
    self:abort()
    return nil, ("bundle '%s': cannot rename the new bundle into place (%s); a directory that is not a bundle is never replaced"):format(self.target, rerr)
  end
  self.tmp = nil
  if old then
    local files = listed_files(old)
    if not files or not remove_listed(old, files) then
      return self.target, ("the previous bundle was kept at '%s' (it holds files this writer did not make)"):format(old)
    end
  end
  return self.target
end

----------------------------------------------------------------- reading

local Bundle = {}
Bundle.__index = Bundle

local function fail(path, fmt, ...)
  return nil, ("bundle '%s': " .. fmt):format(path, ...)
end

--- Opens and verifies the bundle at `path`, of kind `kind`. Returns the
-- bundle, or nil and a message naming the file at fault.
function M.open(path, kind)
  if type(path) ~= "string" then error("bad argument #1 to 'open' (path: string expected)", 2) end
  path = path:gsub("/+$", "")
  local text, err = read_all(path .. "/" .. M.MANIFEST)
  if not text then return fail(path, "%s is missing or unreadable (%s); is this a saved bundle?", M.MANIFEST, err) end
  local m, jerr = core.json_decode(text)
  if not m then return fail(path, "%s: %s", M.MANIFEST, jerr) end
  if type(m) ~= "table" or m.format ~= M.FORMAT then
    return fail(path, "%s: 'format' must be '%s'", M.MANIFEST, M.FORMAT)
  end
  if kind and m.kind ~= kind then
    return fail(path, "%s: this is a bundle of kind '%s', expected '%s'", M.MANIFEST, tostring(m.kind), kind)
  end
  if type(m.files) ~= "table" or #m.files == 0 then return fail(path, "%s: 'files' must be a non-empty list", M.MANIFEST) end
  local files = {}
  for i, f in ipairs(m.files) do
    if type(f) ~= "table" or math.type(f.bytes) ~= "integer" or type(f.sha256) ~= "string" then
      return fail(path, "%s: entry %d needs path, bytes (an integer) and sha256", M.MANIFEST, i)
    end
    if not safe_relpath(f.path) or f.path == M.MANIFEST then
      return fail(path, "%s: entry %d: '%s' is not a plain file name inside the bundle", M.MANIFEST, i, tostring(f.path))
    end
    if files[f.path] then return fail(path, "%s: '%s' is listed twice", M.MANIFEST, f.path) end
    local hex, size = core.sha256_file(path .. "/" .. f.path)
    if not hex then return fail(path, "%s is missing (%s)", f.path, size) end
    if size ~= f.bytes then
      return fail(path, "%s has %d bytes, the manifest says %d (truncated or replaced)", f.path, size, f.bytes)
    end
    if hex ~= f.sha256 then
      return fail(path, "%s does not match its checksum in the manifest (the file was changed or corrupted)", f.path)
    end
    files[f.path] = f
  end
  return setmetatable({ dir = path, manifest = m, listed = files }, Bundle)
end

--- Whether the bundle lists `rel`.
function Bundle:has(rel) return self.listed[rel] ~= nil end

--- The list of files (manifest order).
function Bundle:files()
  local out = {}
  for i, f in ipairs(self.manifest.files) do out[i] = f.path end
  return out
end

--- The full path of a listed file, or nil and a message.
function Bundle:path(rel)
  if not self.listed[rel] then return fail(self.dir, "%s is not in the manifest", rel) end
  return self.dir .. "/" .. rel
end

--- The decoded JSON of a listed file, or nil and a message.
function Bundle:json(rel)
  local p, err = self:path(rel)
  if not p then return nil, err end
  local v, jerr = core.json_decode(read_all(p) or "")
  if v == nil then return fail(self.dir, "%s: %s", rel, jerr) end
  return v
end

--- The text of a listed file, or nil and a message.
function Bundle:text(rel)
  local p, err = self:path(rel)
  if not p then return nil, err end
  return read_all(p)
end

local function shape_str(shape) return "[" .. table.concat(shape, ",") .. "]" end

--- A listed .npy array, checked against expect = {dtype =, shape = {...}}
-- (-1 matches any size); or nil and a message naming the file.
function Bundle:npy(rel, expect)
  local p, err = self:path(rel)
  if not p then return nil, err end
  local t, lerr = core.load_npy(p)
  if not t then return fail(self.dir, "%s: %s", rel, lerr) end
  if expect then
    local shape = t:shape()
    local ok = (not expect.dtype or t:dtype() == expect.dtype) and (not expect.shape or #shape == #expect.shape)
    for i, s in ipairs(ok and expect.shape or {}) do
      if s ~= -1 and s ~= shape[i] then ok = false end
    end
    if not ok then
      local want = {}
      for i, s in ipairs(expect.shape or {}) do want[i] = s == -1 and "*" or tostring(s) end
      return fail(self.dir, "%s: expected %s %s, the file holds %s %s", rel, expect.dtype or "any dtype",
        expect.shape and shape_str(want) or "", t:dtype(), shape_str(shape))
    end
  end
  return t
end

return M
