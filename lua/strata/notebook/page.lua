--- strata.notebook.page: a run notebook as one self-contained HTML page
-- (inline CSS, images as base64 data URIs, no scripts, nothing fetched).
--
--   local html = page.render{ title =, source =, cells =, summary = }
--
-- cells are those of strata.notebook.parse.split after the runner filled in
-- status ("ok", "error", "not run", "stopped"), time (seconds) and outputs:
--   {kind = "stdout" | "stderr" | "value" | "error" | "note", text = ...}
--   {kind = "image", bytes =, mime =, caption =, width =}
--   {kind = "table", header = {...} or nil, rows = {{...}, ...}, width = columns,
--    formats = {per column: a format for numbers, or false} or nil, caption =}
--   {kind = "markdown", text = ...}
local lex = require "strata.notebook.lex"
local md = require "strata.notebook.markdown"

local M = {}

local escape = md.escape

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_CHARS = {}
for i = 1, 64 do B64_CHARS[i - 1] = B64:sub(i, i) end

--- Base64 (RFC 4648, with = padding) of a byte string.
function M.base64(bytes)
  local out, n = {}, #bytes
  for i = 1, n - 2, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = B64_CHARS[v >> 18] .. B64_CHARS[v >> 12 & 63] .. B64_CHARS[v >> 6 & 63] .. B64_CHARS[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = bytes:byte(n) << 16
    out[#out + 1] = B64_CHARS[v >> 18] .. B64_CHARS[v >> 12 & 63] .. "=="
  elseif rest == 2 then
    local a, b = bytes:byte(n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = B64_CHARS[v >> 18] .. B64_CHARS[v >> 12 & 63] .. B64_CHARS[v >> 6 & 63] .. "="
  end
  return table.concat(out)
end

--- The MIME type of image bytes from their signature, or nil.
function M.image_mime(bytes)
  if bytes:sub(1, 8) == "\137PNG\r\n\26\n" then return "image/png" end
  if bytes:sub(1, 3) == "\255\216\255" then return "image/jpeg" end
  if bytes:sub(1, 6) == "GIF87a" or bytes:sub(1, 6) == "GIF89a" then return "image/gif" end
end

function M.data_uri(bytes, mime) return "data:" .. mime .. ";base64," .. M.base64(bytes) end

local CLASS = { keyword = "k", string = "s", comment = "c", number = "n" }

--- Lua source as escaped HTML with keywords, strings, comments and
-- numbers in spans.
function M.highlight(code)
  local out = {}
  for _, t in ipairs(lex.tokens(code)) do
    local class = CLASS[t.kind]
    out[#out + 1] = class and ('<span class="' .. class .. '">' .. escape(t.text) .. "</span>") or escape(t.text)
  end
  return table.concat(out)
end

-- Terminal-style text: a carriage return starts its line over (progress
-- bars), so only what was written after the last one is kept.
local function terminal_text(s)
  return (s:gsub("[^\n]*", function(line)
    line = line:gsub("\r+$", "")
    return line:match("[^\r]*$")
  end))
end

local MAX_TEXT = 200000

local function pre(class, text)
  text = terminal_text(text):gsub("\n$", "") -- the block ends the last line
  local note = ""
  if #text > MAX_TEXT then
    note = ('\n<span class="trunc">… %d more bytes not shown</span>'):format(#text - MAX_TEXT)
    text = text:sub(1, MAX_TEXT)
  end
  return '<pre class="' .. class .. '">' .. escape(text) .. note .. "</pre>"
end

--- A table cell as text: floats through `fmt` (a string.format pattern,
-- default "%.6g"), nil as "", anything else by tostring.
function M.cell_text(v, fmt)
  if v == nil then return "" end
  if math.type(v) == "float" then return (fmt or "%.6g"):format(v) end
  if fmt and math.type(v) == "integer" and fmt:match("[dxX]$") then return fmt:format(v) end
  return tostring(v)
end

local function render_table(item)
  local out = { '<div class="table-wrap"><table class="data">' }
  if item.caption then out[#out + 1] = "<caption>" .. escape(item.caption) .. "</caption>" end
  if item.header then
    local th = {}
    for i, h in ipairs(item.header) do th[i] = "<th>" .. escape(tostring(h)) .. "</th>" end
    out[#out + 1] = "<thead><tr>" .. table.concat(th) .. "</tr></thead>"
  end
  out[#out + 1] = "<tbody>"
  for _, row in ipairs(item.rows) do
    local td = {}
    for i = 1, item.width do
      local v = row[i]
      local num = type(v) == "number" and ' class="num"' or ""
      td[i] = "<td" .. num .. ">" .. escape(M.cell_text(v, item.formats and item.formats[i] or nil)) .. "</td>"
    end
    out[#out + 1] = "<tr>" .. table.concat(td) .. "</tr>"
  end
  out[#out + 1] = "</tbody></table></div>"
  return table.concat(out, "\n")
end

local function render_image(item)
  local style = item.width and (' style="width:' .. math.floor(item.width) .. 'px"') or ""
  local cap = item.caption and ("<figcaption>" .. escape(item.caption) .. "</figcaption>") or ""
  return '<figure><img src="' .. M.data_uri(item.bytes, item.mime) .. '" alt="' .. escape(item.caption or "image")
    .. '"' .. style .. ">" .. cap .. "</figure>"
end

local function markdown_opts(ctx)
  return {
    ids = ctx.ids,
    image = ctx.image,
    code = function(source, lang) if lang == "lua" then return M.highlight(source) end end,
  }
end

local function render_output(ctx, item)
  local k = item.kind
  if k == "stdout" then return pre("out", item.text) end
  if k == "stderr" then return pre("out stderr", item.text) end
  if k == "value" then return pre("out value", item.text) end
  if k == "error" then return pre("out error", item.text) end
  if k == "note" then return '<p class="note">' .. escape(item.text) .. "</p>" end
  if k == "image" then return render_image(item) end
  if k == "table" then return render_table(item) end
  if k == "markdown" then return '<div class="md">' .. md.render(item.text, markdown_opts(ctx)) .. "</div>" end
  error("page: unknown output kind " .. tostring(k))
end

local function seconds(t)
  if not t then return "" end
  if t < 1 then return ("%.0f ms"):format(t * 1000) end
  if t < 60 then return ("%.2f s"):format(t) end
  return ("%d min %02d s"):format(t // 60, math.floor(t % 60))
end
M.seconds = seconds

local STATUS_LABEL = { ok = "", error = "failed", ["not run"] = "not run", stopped = "stopped" }

local function render_code(ctx, cell, n)
  local id = "cell-" .. n
  local status = cell.status or "not run"
  local out = {
    ('<section class="cell code %s" id="%s">'):format(status:gsub(" ", "-"), id),
    ('<div class="meta"><a class="label" href="#%s">[%d]</a> <span class="where">%s:%d</span>'):format(id, n,
      escape(ctx.source), cell.line),
    STATUS_LABEL[status] ~= "" and ('<span class="status">' .. STATUS_LABEL[status] .. "</span>") or "",
    '<span class="time">' .. seconds(cell.time) .. "</span></div>",
    '<pre class="src"><code>' .. M.highlight(cell.code) .. "</code></pre>",
  }
  if cell.outputs and #cell.outputs > 0 then
    out[#out + 1] = '<div class="outputs">'
    for _, item in ipairs(cell.outputs) do out[#out + 1] = render_output(ctx, item) end
    out[#out + 1] = "</div>"
  end
  out[#out + 1] = "</section>"
  return table.concat(out, "\n")
end

local CSS = [[
:root{--fg:#1d2430;--muted:#6a7385;--line:#dde2ea;--code:#f6f8fb;--out:#ffffff;--accent:#2f5fb3;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;background:#eef1f5;color:var(--fg);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{
  max-width:1000px;margin:0 auto;padding:24px 28px 64px;background:#fff;min-height:100vh;
  box-shadow:0 0 0 1px var(--line);}
header.top{
  font-size:13px;color:var(--muted);border-bottom:1px solid var(--line);padding-bottom:10px;margin-bottom:8px;
  display:flex;flex-wrap:wrap;gap:4px 18px;}
header.top .state-ok{color:#1b7a3a;font-weight:600}
header.top .state-bad{color:var(--bad);font-weight:600}
h1,h2,h3,h4{line-height:1.25;margin:1.3em 0 .5em}
h1{font-size:1.9em}
h2{font-size:1.45em;border-bottom:1px solid var(--line);padding-bottom:.2em}
a{color:var(--accent)}
code,pre{font:13.5px/1.45 ui-monospace,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono",monospace}
:not(pre)>code{background:var(--code);border:1px solid var(--line);border-radius:4px;padding:0 .25em}
pre{margin:0;padding:10px 12px;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
.md pre,.markdown pre{background:var(--code);border:1px solid var(--line);border-radius:6px}
blockquote{margin:0 0 1em;padding:.1em 1em;border-left:4px solid var(--line);color:var(--muted)}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left}
th{background:var(--code)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.table-wrap{overflow-x:auto}
caption{caption-side:top;text-align:left;color:var(--muted);font-size:14px;padding:2px 0}
.cell.code{margin:14px 0;border:1px solid var(--line);border-radius:8px;overflow:hidden}
.cell.code .meta{
  display:flex;gap:10px;align-items:baseline;font-size:12.5px;color:var(--muted);padding:4px 12px;background:#f0f3f8;
  border-bottom:1px solid var(--line);}
.cell.code .meta .label{font-weight:600;text-decoration:none;color:var(--accent)}
.cell.code .meta .time{margin-left:auto;font-variant-numeric:tabular-nums}
.cell.code .meta .status{font-weight:600;color:var(--bad)}
.cell.not-run,.cell.stopped{opacity:.55}
.cell.not-run .meta .status,.cell.stopped .meta .status{color:var(--muted)}
.cell.error{border-color:var(--bad)}
pre.src{background:var(--code)}
.outputs{border-top:1px solid var(--line);padding:4px 0}
pre.out{background:var(--out)}
pre.stderr{color:#8a5a00}
pre.value{color:#34495e}
pre.error{color:var(--bad);background:#fdf1f0;border-left:4px solid var(--bad)}
p.note{margin:6px 12px;color:var(--muted);font-style:italic}
figure{margin:8px 12px}
figure img{max-width:100%;image-rendering:pixelated;border:1px solid var(--line)}
figcaption{font-size:13px;color:var(--muted)}
.outputs .md{padding:0 12px}
.outputs table.data{margin:8px 12px}
.k{color:#8b2fb3;font-weight:600}
.s{color:#1d7a3b}
.c{color:#7b8494;font-style:italic}
.n{color:#b35a00}
.trunc{color:var(--muted);font-style:italic}
footer{margin-top:40px;font-size:12px;color:var(--muted)}
]]

--- The page. doc: title, source (the notebook's path as given), cells,
-- summary {code = n, failed = n, not_run = n, stopped = message or nil,
-- time = seconds, started = date string}, version, image(src) (a data URI
-- for a Markdown image, or nil).
function M.render(doc)
  local ctx = { ids = {}, source = doc.source, image = doc.image }
  local s = doc.summary
  local state
  if s.failed > 0 then
    state = ('<span class="state-bad">%d of %d code cells failed</span>'):format(s.failed, s.code)
  elseif s.stopped then
    state = ('<span class="state-ok">stopped early: %s</span>'):format(escape(s.stopped))
  else
    state = ('<span class="state-ok">%d code cells ran</span>'):format(s.code)
  end
  if s.not_run > 0 then state = state .. (" · %d not run"):format(s.not_run) end
  local body = {}
  local code_n = 0
  for _, cell in ipairs(doc.cells) do
    if cell.kind == "markdown" then
      body[#body + 1] = '<div class="cell markdown">' .. md.render(cell.text, markdown_opts(ctx)) .. "</div>"
    else
      code_n = code_n + 1
      body[#body + 1] = render_code(ctx, cell, code_n)
    end
  end
  return table.concat({
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="Strata ' .. escape(doc.version or "") .. '">',
    "<title>" .. escape(doc.title) .. "</title>",
    "<style>" .. CSS .. "</style></head><body><main>",
    '<header class="top"><span>' .. escape(doc.source) .. "</span><span>" .. state .. "</span><span>total "
      .. seconds(s.time) .. "</span><span>" .. escape(s.started or "") .. "</span></header>",
    table.concat(body, "\n"),
    "<footer>Rendered by <code>strata notebook</code> (Strata " .. escape(doc.version or "")
      .. "). Times are wall-clock seconds per cell.</footer>",
    "</main></body></html>",
    "",
  }, "\n")
end

return M
