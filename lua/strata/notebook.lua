--- strata.notebook: literate Lua notebooks rendered to one HTML page
-- (docs/notebooks.md).
--
--   strata notebook tour.lua -o tour.html        -- the command (main below)
--   strata.notebook.render("tour.lua", {output = "tour.html"})
--
-- Inside a notebook (functions that also work in a plain script run, where
-- they print a text stand-in instead):
--   strata.notebook.image("fig.png", {caption = "...", width = 600})
--   strata.notebook.image(canvas)             -- a u8 [H, W, 3] tensor (strata.grid)
--   strata.notebook.table(rows, {header = {...}, caption = "..."})
--   strata.notebook.markdown("computed **prose**")
--   strata.notebook.stop("why")               -- end here, successfully
local core = require "strata.core"
local util = require "strata.util"
local parse = require "strata.notebook.parse"
local run = require "strata.notebook.run"
local page = require "strata.notebook.page"
local repl = require "strata.repl"

local M = {}

-- Where outputs go while a notebook runs (set by the runner; nil in a
-- plain script run).
local emit
local emit_hook = { get = function() return emit end, set = function(f) emit = f end }

--- True while a notebook is being rendered.
function M.active() return emit ~= nil end

local arg_error = util.arg_error

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local bytes = f:read("a")
  f:close()
  return bytes
end

-- An image output from a file path or a u8 [H, W, C] tensor.
local function image_item(x, opts, fname)
  opts = opts or {}
  local bytes, err, label
  if type(x) == "string" then
    bytes, err = read_file(x)
    if not bytes then arg_error(fname, 1, "image: " .. err) end
    label = x
  elseif core.is_tensor(x) then
    local tmp = os.tmpname()
    local ok, werr = core.figure_save(x, tmp)
    if ok then bytes, err = read_file(tmp) else err = werr end
    os.remove(tmp)
    if not bytes then arg_error(fname, 1, "image: " .. tostring(err)) end
    local shape = x:shape()
    label = ("%dx%d canvas"):format(shape[2], shape[1])
  else
    arg_error(fname, 1, "image: a file path or a u8 [H, W, C] tensor expected, got " .. type(x))
  end
  local mime = page.image_mime(bytes)
  if not mime then arg_error(fname, 1, "image: " .. label .. " is not a PNG, JPEG or GIF file") end
  return { kind = "image", bytes = bytes, mime = mime, caption = opts.caption or nil, width = opts.width or nil,
    label = label }
end

--- Shows an image: a PNG/JPEG/GIF file or a u8 canvas [H, W, 3] (what
-- strata.grid returns). opts: caption, width (display width in pixels).
-- The bytes are embedded in the page, so the file may be removed later.
function M.image(x, opts)
  opts = util.options("strata.notebook.image", opts, { caption = false, width = false })
  local item = image_item(x, opts, "image")
  if emit then
    emit(item)
  else
    print(("[image: %s%s]"):format(item.label, item.caption and (" - " .. item.caption) or ""))
  end
end

local function cell_value(v)
  if type(v) == "number" or type(v) == "string" or v == nil then return v end
  return repl.format(v)
end

-- Rows as lists of cells: lists stay as they are, records are read in
-- `columns` order, and a table with no list part becomes key/value rows.
local function table_rows(rows, opts)
  local header = opts.header or nil
  local out = {}
  if #rows == 0 and next(rows) ~= nil then
    local keys = {}
    for k in pairs(rows) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for i, k in ipairs(keys) do out[i] = { tostring(k), cell_value(rows[k]) } end
    return out, header or { "key", "value" }
  end
  local columns = opts.columns or nil
  if not columns and type(rows[1]) == "table" and #rows[1] == 0 and next(rows[1]) ~= nil then
    columns = {}
    for k in pairs(rows[1]) do columns[#columns + 1] = k end
    table.sort(columns, function(a, b) return tostring(a) < tostring(b) end)
  end
  for i, row in ipairs(rows) do
    if type(row) ~= "table" then arg_error("table", 1, ("rows: row %d is a %s, not a table"):format(i, type(row))) end
    local r = {}
    if columns then
      for c, key in ipairs(columns) do r[c] = cell_value(row[key]) end
    else
      for c = 1, #row do r[c] = cell_value(row[c]) end
    end
    out[i] = r
  end
  if columns and not header then
    header = {}
    for c, key in ipairs(columns) do header[c] = tostring(key) end
  end
  return out, header
end

local function text_table(header, rows, width, formats)
  local all = { header }
  for _, r in ipairs(rows) do all[#all + 1] = r end
  local w = {}
  local function cell(r, c) return page.cell_text(r[c], formats and r ~= header and formats[c] or nil) end
  for _, r in ipairs(all) do
    for c = 1, width do w[c] = math.max(w[c] or 0, utf8.len(cell(r, c)) or #cell(r, c)) end
  end
  local lines = {}
  for k, r in ipairs(all) do
    local parts = {}
    for c = 1, width do
      local s = cell(r, c)
      local pad = (" "):rep(w[c] - (utf8.len(s) or #s))
      parts[c] = type(r[c]) == "number" and pad .. s or s .. pad
    end
    lines[#lines + 1] = table.concat(parts, "  "):gsub("%s+$", "")
    if k == 1 and header then
      local dash = {}
      for c = 1, width do dash[c] = ("-"):rep(w[c]) end
      lines[#lines + 1] = table.concat(dash, "  ")
    end
  end
  if not header then table.remove(lines, 1) end
  return table.concat(lines, "\n")
end

--- Shows a table. rows: a list of lists ({{"a", 1}, {"b", 2}}), a list of
-- records (read in opts.columns order, default their sorted keys), or one
-- record (shown as key / value rows). opts: header (column titles),
-- columns, caption, format (how numbers are written: a string.format
-- pattern such as "%.3f" for every column, or a list with one per column,
-- false for the default "%.6g"). Numbers are right-aligned.
function M.table(rows, opts)
  if type(rows) ~= "table" then arg_error("table", 1, "rows: table expected, got " .. type(rows)) end
  opts = util.options("strata.notebook.table", opts,
    { header = false, columns = false, caption = false, format = false })
  local body, header = table_rows(rows, opts)
  local width = header and #header or 0
  for _, r in ipairs(body) do width = math.max(width, #r) end
  local formats = opts.format or nil
  if type(formats) == "string" then
    local all = {}
    for c = 1, width do all[c] = formats end
    formats = all
  elseif formats ~= nil and type(formats) ~= "table" then
    arg_error("table", 2, "format: a string or a list of strings expected, got " .. type(formats))
  end
  if emit then
    emit({ kind = "table", header = header, rows = body, width = width, formats = formats,
      caption = opts.caption or nil })
  else
    if opts.caption then print(opts.caption) end
    print(text_table(header, body, width, formats))
  end
end

--- Shows Markdown text made by the code (rendered in the page; printed
-- as it is in a plain run).
function M.markdown(text)
  if type(text) ~= "string" then arg_error("markdown", 1, "text: string expected, got " .. type(text)) end
  if emit then emit({ kind = "markdown", text = text }) else print(text) end
end

--- Ends the notebook here without failing: the remaining cells are shown
-- as not run, and a plain script run exits with status 0.
function M.stop(message)
  message = message == nil and "stopped" or tostring(message)
  if emit then error(run.stop_error(message, false), 0) end
  print(message)
  os.exit(0)
end

---------------------------------------------------------------- rendering

local function title_of(cells, path)
  for _, cell in ipairs(cells) do
    if cell.kind == "markdown" then
      local h = cell.text:match("^#%s+([^\n]+)") or cell.text:match("\n#%s+([^\n]+)")
      if h then return (h:gsub("[*_`]", "")) end
    end
  end
  return path:match("([^/]+)$")
end

-- A data URI for a Markdown image that names a local file (tried as given,
-- then beside the notebook), or nil to leave the reference as it is.
local function local_image(dir)
  return function(src)
    if src:match("^%a[%w+.-]*:") then return nil end
    for _, p in ipairs({ src, dir and not src:match("^/") and (dir .. "/" .. src) or nil }) do
      local bytes = read_file(p)
      local mime = bytes and page.image_mime(bytes)
      if mime then return page.data_uri(bytes, mime) end
    end
  end
end

-- Writes text to path through a temporary file and a rename.
local function write_atomic(path, text)
  local tmp = ("%s.tmp-%d"):format(path, math.random(1, 1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. path .. ": " .. err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, "cannot write " .. path .. ": " .. tostring(werr or cerr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, "cannot write " .. path .. ": " .. rerr
  end
  return true
end

local RENDER_DEFAULTS = { output = false, keep_going = false, args = false, progress = false }

--- Runs a notebook file and writes its page. opts: output (default: the
-- notebook's path with .html for .lua), keep_going (run the cells after a
-- failed one; default false), args (a list passed to the cells as ...
-- and arg), progress(event, cell, n, count). Returns a summary {code,
-- failed, not_run, stopped, time, output, cells}, or nil and a message
-- when the notebook cannot be read or the page cannot be written.
function M.render(path, opts)
  if type(path) ~= "string" then arg_error("render", 1, "path: string expected, got " .. type(path)) end
  opts = util.options("strata.notebook.render", opts, RENDER_DEFAULTS)
  local source, err = read_file(path)
  if not source then return nil, "cannot read notebook: " .. err end
  local output = opts.output or (path:gsub("%.lua$", "") .. ".html")
  local cells = parse.split(source)
  local started = os.date("%Y-%m-%d %H:%M")
  local summary = run.cells(cells, {
    path = path, args = opts.args or {}, keep_going = opts.keep_going, emit_hook = emit_hook,
    progress = opts.progress or nil, image_item = function(t) return image_item(t, {}, "image") end,
  })
  summary.started = started
  local html = page.render({
    title = title_of(cells, path), source = path, cells = cells, summary = summary,
    version = core.version, image = local_image(path:match("^(.*)/[^/]*$")),
  })
  local ok, werr = write_atomic(output, html)
  if not ok then return nil, werr end
  summary.output, summary.cells = output, cells
  return summary
end

---------------------------------------------------------------- command

local USAGE = [[
usage: strata notebook file.lua [-o out.html] [-k] [-q] [-- args...]
  -o, --output FILE   write the page here (default: file.html beside file.lua)
  -k, --keep-going    run the remaining cells after a cell fails
  -q, --quiet         no progress on standard error
Runs the cells in order and writes one self-contained HTML page. Exit
status: 0 when every cell ran, 1 when a cell failed or the page could not
be written, 2 for a usage error.
]]

local function parse_args(argv)
  local o = { args = {} }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, #argv, 1, o.args)
      break
    elseif a == "-o" or a == "--output" then
      if not argv[i + 1] then return nil, a .. " needs a file name" end
      o.output = argv[i + 1]
      i = i + 1
    elseif a == "-k" or a == "--keep-going" then
      o.keep_going = true
    elseif a == "-q" or a == "--quiet" then
      o.quiet = true
    elseif a == "-h" or a == "--help" then
      o.help = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unrecognised option '" .. a .. "'"
    elseif o.file then
      return nil, "one notebook at a time (got '" .. o.file .. "' and '" .. a .. "')"
    else
      o.file = a
    end
    i = i + 1
  end
  if not o.file and not o.help then return nil, "which notebook?" end
  return o
end

--- The `strata notebook` command: argv is the list of arguments after
-- "notebook". Returns the exit status.
function M.main(argv)
  local stderr = io.stderr
  local o, err = parse_args(argv or {})
  if not o then
    stderr:write("strata notebook: ", err, "\n", USAGE)
    return 2
  end
  if o.help then
    io.stdout:write(USAGE)
    return 0
  end
  local progress
  if not o.quiet then
    progress = function(event, cell, n, count)
      if event == "start" then
        stderr:write(("[%d/%d] %s:%d "):format(n, count, o.file, cell.line))
      else
        stderr:write(cell.status == "ok" and "ok" or cell.status, " (", page.seconds(cell.time), ")\n")
      end
      stderr:flush()
    end
  end
  local summary, rerr = M.render(o.file, {
    output = o.output, keep_going = o.keep_going, args = o.args, progress = progress,
  })
  if not summary then
    stderr:write("strata notebook: ", rerr, "\n")
    return 1
  end
  if not o.quiet or summary.failed > 0 then
    local parts = { ("%d code cells"):format(summary.code) }
    if summary.failed > 0 then parts[#parts + 1] = ("%d failed"):format(summary.failed) end
    if summary.not_run > 0 then parts[#parts + 1] = ("%d not run"):format(summary.not_run) end
    if summary.stopped then parts[#parts + 1] = "stopped: " .. summary.stopped end
    stderr:write(("wrote %s (%s, %s)\n"):format(summary.output, table.concat(parts, ", "), page.seconds(summary.time)))
  end
  return summary.failed > 0 and 1 or 0
end

return M
