--- strata.notebook.run: runs the code cells of a notebook in order, in one
-- environment, recording what each cell prints, shows and raises.
--
--   local summary = run.cells(cells, {path = "tour.lua", args = {}, keep_going = false,
--                                     progress = function(event, cell, n, count) end})
--
-- Each code cell gets status ("ok", "error", "stopped", "not run"), time
-- (wall seconds) and outputs (the list page.lua renders). The cells share
-- one environment whose missing names come from _G; top-level locals of a
-- cell become fields of it (parse.chunk), so later cells see them.
-- While a cell runs, print, io.write, io.stdout, io.stderr and os.exit are
-- replaced: output is recorded per cell, and os.exit (like
-- strata.notebook.stop) ends the notebook instead of the process.
local core = require "strata.core"
local parse = require "strata.notebook.parse"
local repl = require "strata.repl"

local M = {}

local clock = core.clock

-- The global through which a cell returns its last call's values (parse.chunk).
local PACK = "__strata_notebook_values"

-- The error value that ends a notebook early: stop(message) or os.exit(code).
local Stop = {}
Stop.__index = Stop
Stop.__tostring = function(s) return s.message end

function M.stop_error(message, failed) return setmetatable({ message = message, failed = failed }, Stop) end

local function is_stop(e) return getmetatable(e) == Stop end

-- An output list with text appends merged into the last item of the same kind.
local function recorder(outputs)
  local rec = {}
  function rec.text(kind, s)
    if s == "" then return end
    local last = outputs[#outputs]
    if last and last.kind == kind and last.parts then
      last.parts[#last.parts + 1] = s
    else
      outputs[#outputs + 1] = { kind = kind, parts = { s } }
    end
  end
  function rec.add(item) outputs[#outputs + 1] = item end
  function rec.finish()
    for _, item in ipairs(outputs) do
      if item.parts then
        item.text, item.parts = table.concat(item.parts), nil
      end
    end
  end
  return rec
end

-- What io.write writes for each argument (numbers as lua formats them).
local function write_text(fname, ...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if math.type(v) == "integer" then
      parts[i] = ("%d"):format(v)
    elseif type(v) == "number" then
      parts[i] = ("%.14g"):format(v)
    elseif type(v) == "string" then
      parts[i] = v
    else
      error(("bad argument #%d to '%s' (string expected, got %s)"):format(i, fname, type(v)), 3)
    end
  end
  return table.concat(parts)
end

-- A stand-in for io.stdout / io.stderr that records what is written.
local function capture_file(rec, kind, real)
  local f = {}
  local methods = {
    write = function(self, ...)
      rec.text(kind, write_text("write", ...))
      return self
    end,
    flush = function(self) return self end,
    setvbuf = function() return true end,
    close = function() return nil, "a notebook cannot close its standard " .. kind end,
    seek = function() return nil, "not seekable" end,
    lines = function() error("standard " .. kind .. " is not readable", 2) end,
    read = function() return nil, "not readable" end,
  }
  return setmetatable(f, {
    __index = methods,
    __name = "FILE*",
    __tostring = function() return tostring(real) end,
  })
end

-- Swaps the output functions for recording ones; returns the undo.
local function capture(rec, emit_hook)
  local saved = {
    print = print, write = io.write, stdout = io.stdout, stderr = io.stderr, exit = os.exit,
    emit = emit_hook.get(),
  }
  _G.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    rec.text("stdout", table.concat(parts, "\t") .. "\n")
  end
  io.write = function(...)
    rec.text("stdout", write_text("write", ...))
    return io.stdout
  end
  io.stdout = capture_file(rec, "stdout", saved.stdout)
  io.stderr = capture_file(rec, "stderr", saved.stderr)
  os.exit = function(code)
    local ok = code == nil or code == true or code == 0
    error(M.stop_error(("os.exit(%s) called"):format(tostring(code)), not ok), 0)
  end
  emit_hook.set(rec.add)
  return function()
    _G.print, io.write, io.stdout, io.stderr, os.exit = saved.print, saved.write, saved.stdout, saved.stderr,
      saved.exit
    emit_hook.set(saved.emit)
  end
end

local function error_text(e)
  if type(e) == "string" then return e end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  return ("(error object is a %s value)"):format(type(e))
end

-- A traceback without the runner's own frames.
local function handler(e)
  if is_stop(e) then return e end
  local tb = debug.traceback(error_text(e), 2)
  local cut = tb:find("\n[^\n]*%[C%]: in function 'xpcall'")
  return cut and tb:sub(1, cut - 1) or tb
end

-- Values a cell returned, as outputs: u8 images [H, W, 3|1] are shown as
-- images (`image_item` makes the output), everything else as text.
local function show_values(rec, values, image_item)
  local texts = {}
  for i = 1, values.n do
    local v = values[i]
    local mt = getmetatable(v)
    local shape = core.is_tensor(v) and v:shape()
    if shape and v:dtype() == "u8" and #shape == 3 and (shape[3] == 3 or shape[3] == 1) then
      rec.add(image_item(v))
    elseif type(mt) == "table" and mt.__name == "FILE*" then -- what io.write returns: not worth showing
    else
      texts[#texts + 1] = repl.format(v)
    end
  end
  if #texts > 0 then rec.add({ kind = "value", text = table.concat(texts, "\t") }) end
end

local function run_cell(cell, env, opts)
  cell.outputs = {}
  local rec = recorder(cell.outputs)
  local body, shows = parse.chunk(cell.code, PACK)
  local fn, err = load(("\n"):rep(cell.line - 1) .. body, "@" .. opts.path, "t", env)
  if not fn then
    cell.status, cell.time = "error", 0
    rec.add({ kind = "error", text = err })
    return
  end
  local undo = capture(rec, opts.emit_hook)
  local t0 = clock()
  local values = table.pack(xpcall(fn, handler, table.unpack(opts.args or {})))
  cell.time = clock() - t0
  undo()
  if values[1] then
    cell.status = "ok"
    if shows then show_values(rec, values[2], opts.image_item) end
  elseif is_stop(values[2]) then
    local stop = values[2]
    cell.status = stop.failed and "error" or "ok"
    cell.stopped = stop.message
    rec.add({ kind = stop.failed and "error" or "note", text = "notebook stopped: " .. stop.message })
  else
    cell.status = "error"
    rec.add({ kind = "error", text = values[2] })
  end
  rec.finish()
end

--- Runs the code cells. opts: path (the chunk name, for messages), args
-- (passed to every cell as ...; also the env's arg table), keep_going
-- (run the rest after a failure; default false: the rest are "not run"),
-- emit_hook {get =, set =} (where strata.notebook sends images and tables),
-- image_item(tensor) (the output for a returned canvas), progress(event, cell, n,
-- count) with event "start" or "done". Returns a summary: code, failed,
-- not_run, stopped (message or nil), time.
function M.cells(cells, opts)
  local env = setmetatable({ [PACK] = table.pack }, { __index = _G })
  local args = opts.args or {}
  env.arg = table.move(args, 1, #args, 1, { [0] = opts.path })
  local summary = { code = 0, failed = 0, not_run = 0, time = 0 }
  local count = 0
  for _, cell in ipairs(cells) do
    if cell.kind == "code" then count = count + 1 end
  end
  local halted = false
  local n = 0
  for _, cell in ipairs(cells) do
    if cell.kind == "code" then
      n = n + 1
      summary.code = summary.code + 1
      if halted then
        cell.status = summary.stopped and "stopped" or "not run"
        summary.not_run = summary.not_run + 1
      else
        if opts.progress then opts.progress("start", cell, n, count) end
        run_cell(cell, env, opts)
        summary.time = summary.time + cell.time
        if opts.progress then opts.progress("done", cell, n, count) end
        if cell.status == "error" then summary.failed = summary.failed + 1 end
        if cell.stopped then
          summary.stopped = cell.stopped
          halted = true
        elseif cell.status == "error" and not opts.keep_going then
          halted = true
        end
      end
    end
  end
  return summary
end

return M
