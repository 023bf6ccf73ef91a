--- strata.notebook.markdown: a small Markdown renderer for notebook prose.
--
--   local md = require "strata.notebook.markdown"
--   md.render("# Title\n\nSome *text* with `code`.")       -- HTML
--   md.render(text, {image = function(src) return data_uri_or_nil end,
--                    code = function(source, lang) return html_or_nil end})
--
-- Blocks: ATX headings (#..######), paragraphs (a line ending in two
-- spaces or a backslash breaks), fenced code (``` or ~~~, with a language),
-- block quotes (>), bullet (-, *, +) and ordered (1. or 1)) lists, nested
-- by indentation, GitHub pipe tables (with :--: alignment) and rules (---).
-- Inline: `code`, *em* / _em_, **strong** / __strong__, ~~strike~~,
-- [links](url "title"), ![images](src), <https://autolinks>, bare
-- https:// links and backslash escapes. Raw HTML is not passed through:
-- every character of the text is escaped, and links with schemes other
-- than http, https and mailto (javascript: ...) are shown as plain text.
local M = {}

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- HTML-escapes text for element content and quoted attribute values.
function M.escape(s) return (tostring(s):gsub("[&<>\"']", ESC)) end
local escape = M.escape

-- Control bytes used as private markers while rendering; removed from input.
local OPEN, CLOSE, BREAK = "\1", "\2", "\3"

--- Whether a link target is safe to put in an href/src: relative paths,
-- fragments and the http(s)/mailto schemes (data:image/ for images).
function M.safe_url(url, is_image)
  local scheme = url:match("^%s*([%a][%w+.-]*):")
  if not scheme then return true end
  scheme = scheme:lower()
  if scheme == "http" or scheme == "https" or scheme == "mailto" then return true end
  return is_image and url:match("^%s*[dD][aA][tT][aA]:image/") ~= nil
end

---------------------------------------------------------------- inline

local inline

-- Emphasis with delimiter `d` (literal) turned into <tag>. An opener is
-- followed by a non-space that is not the delimiter's character; a closer
-- follows a non-space. `_` only works at word boundaries.
local function emphasis(s, d, tag, intraword)
  local out, i, n = {}, 1, #d
  local dc = d:sub(1, 1)
  while true do
    local a = s:find(d, i, true)
    if not a then break end
    local before, after = s:sub(a - 1, a - 1), s:sub(a + n, a + n)
    local close
    if after ~= "" and not after:match("%s") and after ~= dc and (intraword or a == 1 or not before:match("%w")) then
      local b = a + n
      while true do
        local c = s:find(d, b + 1, true)
        if not c then break end
        local prev, nxt = s:sub(c - 1, c - 1), s:sub(c + n, c + n)
        if not prev:match("%s") and (intraword or not nxt:match("%w")) then
          close = c
          break
        end
        b = c
      end
    end
    if close then
      out[#out + 1] = s:sub(i, a - 1) .. "<" .. tag .. ">" .. s:sub(a + n, close - 1) .. "</" .. tag .. ">"
      i = close + n
    else
      out[#out + 1] = s:sub(i, a)
      i = a + 1
    end
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

-- Parses "[text](dest "title")" at position i (s:sub(i, i) == "[").
-- Returns text, dest, title, position after; or nil.
local function parse_link(s, i)
  local depth, j = 0, i
  while j <= #s do
    local c = s:sub(j, j)
    if c == "\\" then
      j = j + 1
    elseif c == "[" then
      depth = depth + 1
    elseif c == "]" then
      depth = depth - 1
      if depth == 0 then break end
    end
    j = j + 1
  end
  if depth ~= 0 or s:sub(j + 1, j + 1) ~= "(" then return nil end
  local text = s:sub(i + 1, j - 1)
  local k = j + 2
  k = s:find("%S", k) or #s + 1
  local dest
  if s:sub(k, k) == "<" then
    local e = s:find(">", k, true)
    if not e then return nil end
    dest, k = s:sub(k + 1, e - 1), e + 1
  else
    local start, parens = k, 0
    while k <= #s do
      local c = s:sub(k, k)
      if c:match("%s") then break end
      if c == "(" then parens = parens + 1 end
      if c == ")" then
        if parens == 0 then break end
        parens = parens - 1
      end
      k = k + 1
    end
    dest = s:sub(start, k - 1)
  end
  k = s:find("%S", k) or #s + 1
  local title
  local q = s:sub(k, k)
  if q == '"' or q == "'" then
    local e = s:find(q, k + 1, true)
    if not e then return nil end
    title, k = s:sub(k + 1, e - 1), e + 1
    k = s:find("%S", k) or #s + 1
  end
  if s:sub(k, k) ~= ")" then return nil end
  return text, dest, title, k + 1
end

local function title_attr(title) return title and (' title="' .. escape(title) .. '"') or "" end

-- Text to HTML: inline spans become placeholders first (so their contents
-- are not touched again), the remaining text is escaped, emphasis applied,
-- and the placeholders restored.
function inline(s, opts)
  local kept, raw = {}, {}
  local function keep(html)
    kept[#kept + 1] = html
    raw[#raw + 1] = OPEN .. #kept .. CLOSE
  end
  local i, n = 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "\\" and s:sub(i + 1, i + 1):match("%p") then
      keep(escape(s:sub(i + 1, i + 1)))
      i = i + 2
    elseif c == "`" then
      local run = s:match("^`+", i)
      local a, b = s:find("%f[`]" .. run .. "%f[^`]", i + #run)
      if a then
        local code = s:sub(i + #run, a - 1):gsub("\n", " ")
        if code:match("^ .* $") and code:match("%S") then code = code:sub(2, -2) end
        keep("<code>" .. escape(code) .. "</code>")
        i = b + 1
      else
        raw[#raw + 1] = run
        i = i + #run
      end
    elseif (c == "[" or (c == "!" and s:sub(i + 1, i + 1) == "[")) and parse_link(s, c == "!" and i + 1 or i) then
      local is_image = c == "!"
      local text, dest, title, after = parse_link(s, is_image and i + 1 or i)
      if is_image then
        local src = opts.image and opts.image(dest) or dest
        if M.safe_url(src, true) then
          keep('<img src="' .. escape(src) .. '" alt="' .. escape(text) .. '"' .. title_attr(title) .. ">")
        else
          keep(escape(text))
        end
      elseif M.safe_url(dest) then
        keep('<a href="' .. escape(dest) .. '"' .. title_attr(title) .. ">" .. inline(text, opts) .. "</a>")
      else
        keep(inline(text, opts))
      end
      i = after
    elseif c == "<" and s:match("^<%a[%w+.-]*:[^%s<>]+>", i) then
      local url = s:match("^<([^>]+)>", i)
      if M.safe_url(url) then
        keep('<a href="' .. escape(url) .. '">' .. escape(url) .. "</a>")
      else
        keep(escape("<" .. url .. ">"))
      end
      i = i + #url + 2
    elseif (c == "h" or c == "H") and (i == 1 or not s:sub(i - 1, i - 1):match("[%w/]"))
        and s:match("^[hH][tT][tT][pP][sS]?://[%w]", i) then
      local url = s:match("^[^%s<>\"]+", i):gsub("[%.,:;!%?%)%]'*_]+$", "")
      keep('<a href="' .. escape(url) .. '">' .. escape(url) .. "</a>")
      i = i + #url
    else
      local plain = s:match("^[^\\`%[!<hH]+", i) or c
      raw[#raw + 1] = plain
      i = i + #plain
    end
  end
  local out = escape(table.concat(raw))
  out = emphasis(out, "**", "strong", true)
  out = emphasis(out, "__", "strong", false)
  out = emphasis(out, "~~", "del", true)
  out = emphasis(out, "*", "em", true)
  out = emphasis(out, "_", "em", false)
  out = out:gsub(BREAK, "<br>")
  -- kept spans never contain placeholders of this level, so one pass restores
  return (out:gsub(OPEN .. "(%d+)" .. CLOSE, function(k) return kept[tonumber(k)] end))
end

--- Renders one line of inline Markdown (no blocks).
function M.inline(s, opts) return inline((s:gsub("[\1\2\3]", "")), opts or {}) end

---------------------------------------------------------------- blocks

local function indent_of(line)
  local ws = line:match("^[ \t]*")
  local n = 0
  for ch in ws:gmatch(".") do n = ch == "\t" and (n // 4 + 1) * 4 or n + 1 end
  return n
end

-- Removes up to n columns of leading whitespace.
local function dedent(line, n)
  local col, i = 0, 1
  while col < n and i <= #line do
    local ch = line:sub(i, i)
    if ch == " " then
      col = col + 1
    elseif ch == "\t" then
      col = (col // 4 + 1) * 4
    else
      break
    end
    i = i + 1
  end
  return line:sub(i)
end

local function is_blank(line) return line:match("^%s*$") ~= nil end

local function fence_of(line)
  local ind, f, info = line:match("^( *)(```+)%s*([^`]*)$")
  if not f then ind, f, info = line:match("^( *)(~~~+)%s*(.*)$") end
  if f and #ind < 4 then return f, info:match("^(%S*)"), #ind end
end

local function heading_of(line)
  local hashes, text = line:match("^ ? ? ?(#+)%s+(.-)%s*$")
  if not hashes then hashes, text = line:match("^ ? ? ?(#+)%s*$"), "" end
  if hashes and #hashes <= 6 then
    text = text:gsub("%s+#+$", ""):gsub("^#+$", "")
    return #hashes, text
  end
end

local function is_rule(line)
  local s = line:gsub("%s", "")
  return #s >= 3 and (s:match("^%-+$") or s:match("^%*+$") or s:match("^_+$")) ~= nil and indent_of(line) < 4
end

-- A list marker: kind ("ul" or "ol"), start number, marker char, content column.
local function list_item_of(line)
  local ind, bullet, sp, rest = line:match("^( *)([-*+])( +)(.*)$")
  if not bullet then
    ind, bullet, sp, rest = line:match("^( *)([-*+])()$")
    if bullet then sp, rest = " ", "" end
  end
  if bullet then return "ul", nil, bullet, #ind + 1 + math.min(#sp, 4), rest, #ind end
  local num, delim
  ind, num, delim, sp, rest = line:match("^( *)(%d%d?%d?%d?%d?%d?%d?%d?%d?)([.)])( +)(.*)$")
  if num then return "ol", tonumber(num), delim, #ind + #num + 1 + math.min(#sp, 4), rest, #ind end
end

local function split_row(line)
  line = line:gsub("^%s*|", ""):gsub("|%s*$", "")
  local cells, cur, i = {}, {}, 1
  while i <= #line do
    local c = line:sub(i, i)
    if c == "\\" and line:sub(i + 1, i + 1) == "|" then
      cur[#cur + 1] = "|"
      i = i + 2
    else
      if c == "|" then
        cells[#cells + 1] = table.concat(cur):match("^%s*(.-)%s*$")
        cur = {}
      else
        cur[#cur + 1] = c
      end
      i = i + 1
    end
  end
  cells[#cells + 1] = table.concat(cur):match("^%s*(.-)%s*$")
  return cells
end

local function table_alignments(line)
  if not line or not line:find("-", 1, true) or not line:match("^[%s|:%-]+$") then return nil end
  local aligns = {}
  for i, cell in ipairs(split_row(line)) do
    if not cell:match("^:?%-+:?$") then return nil end
    local left, right = cell:sub(1, 1) == ":", cell:sub(-1) == ":"
    aligns[i] = left and right and "center" or right and "right" or left and "left" or false
  end
  return aligns
end

-- Lines that end a paragraph without a blank line (an ordered list only
-- when it starts at 1, so "2024. was a year" stays prose).
local function interrupts(line)
  if fence_of(line) or heading_of(line) or is_rule(line) or line:match("^ ? ? ?>") then return true end
  local kind, start, _, _, rest = list_item_of(line)
  return kind ~= nil and not is_blank(rest) and (kind == "ul" or start == 1)
end

local render_blocks

local function slug(ctx, text)
  local base = text:gsub("<[^>]*>", ""):gsub("&%w+;", ""):lower():gsub("[^%w]+", "-"):gsub("^%-+", "")
    :gsub("%-+$", "")
  if base == "" then base = "section" end
  local id, k = base, 1
  while ctx.ids[id] do
    k = k + 1
    id = base .. "-" .. k
  end
  ctx.ids[id] = true
  return id
end

local function code_block(ctx, lines, lang)
  local source = table.concat(lines, "\n")
  local html = ctx.opts.code and ctx.opts.code(source, lang) or escape(source)
  local class = lang ~= "" and (' class="language-' .. escape(lang) .. '"') or ""
  return "<pre><code" .. class .. ">" .. html .. "</code></pre>"
end

local function render_table(ctx, lines, i, aligns)
  local head = split_row(lines[i])
  local ncol = #aligns
  local function row(cells, tag)
    local out = { "<tr>" }
    for c = 1, ncol do
      local style = aligns[c] and (' style="text-align:' .. aligns[c] .. '"') or ""
      out[#out + 1] = "<" .. tag .. style .. ">" .. inline(cells[c] or "", ctx.opts) .. "</" .. tag .. ">"
    end
    out[#out + 1] = "</tr>"
    return table.concat(out)
  end
  local out = { "<table>", "<thead>" .. row(head, "th") .. "</thead>", "<tbody>" }
  local j = i + 2
  while j <= #lines and not is_blank(lines[j]) and lines[j]:find("|", 1, true) do
    out[#out + 1] = row(split_row(lines[j]), "td")
    j = j + 1
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n"), j
end

-- A list starting at line i: returns its HTML and the next line.
local function render_list(ctx, lines, i)
  local kind, start, marker, _, _, base = list_item_of(lines[i])
  local items, loose = {}, false
  local j = i
  while j <= #lines do
    local k2, _, m2, content, rest, ind = list_item_of(lines[j])
    if not (k2 == kind and m2 == marker and ind == base) then break end
    local item = { rest }
    j = j + 1
    local last_blank = false
    while j <= #lines do
      local line = lines[j]
      if is_blank(line) then
        item[#item + 1] = ""
        last_blank = true
        j = j + 1
      elseif indent_of(line) > base then
        if last_blank then loose = loose or not list_item_of(dedent(line, math.min(indent_of(line), content))) end
        item[#item + 1] = dedent(line, math.min(indent_of(line), content))
        last_blank = false
        j = j + 1
      elseif not last_blank and not list_item_of(line) and not interrupts(line) then
        item[#item + 1] = line:match("^%s*(.*)$") -- lazy continuation of the item's paragraph
        j = j + 1
      else
        break
      end
    end
    while #item > 0 and item[#item] == "" do item[#item] = nil end
    items[#items + 1] = item
    if last_blank and j <= #lines then
      local nk, _, nm, _, _, nind = list_item_of(lines[j])
      if nk == kind and nm == marker and nind == base then loose = true end
    end
    if j <= #lines and is_blank(lines[j - 1]) then
      local nk, _, nm, _, _, nind = list_item_of(lines[j])
      if not (nk == kind and nm == marker and nind == base) then break end
    end
  end
  local open = kind == "ul" and "<ul>" or (start ~= 1 and ('<ol start="' .. start .. '">') or "<ol>")
  local out = { open }
  for _, item in ipairs(items) do
    out[#out + 1] = "<li>" .. render_blocks(ctx, item, not loose) .. "</li>"
  end
  out[#out + 1] = kind == "ul" and "</ul>" or "</ol>"
  return table.concat(out, "\n"), j
end

-- Renders a list of lines as blocks. `tight`: paragraphs without <p>
-- (the items of a tight list).
function render_blocks(ctx, lines, tight)
  local out, i = {}, 1
  while i <= #lines do
    local line = lines[i]
    local fence, lang, find = fence_of(line)
    local level, htext = heading_of(line)
    local aligns = line:find("|", 1, true) and table_alignments(lines[i + 1])
    if is_blank(line) then
      i = i + 1
    elseif fence then
      local body, j = {}, i + 1
      while j <= #lines do
        local close = lines[j]:match("^ *(" .. fence:sub(1, 1):rep(3) .. "+)%s*$")
        if close and #close >= #fence then break end
        body[#body + 1] = dedent(lines[j], find)
        j = j + 1
      end
      out[#out + 1] = code_block(ctx, body, lang)
      i = j + 1
    elseif level then
      local html = inline(htext, ctx.opts)
      out[#out + 1] = ("<h%d id=\"%s\">%s</h%d>"):format(level, slug(ctx, html), html, level)
      i = i + 1
    elseif is_rule(line) then
      out[#out + 1] = "<hr>"
      i = i + 1
    elseif line:match("^ ? ? ?>") then
      local body = {}
      while i <= #lines and lines[i]:match("^ ? ? ?>") do
        body[#body + 1] = lines[i]:gsub("^ ? ? ?> ?", "")
        i = i + 1
      end
      out[#out + 1] = "<blockquote>\n" .. render_blocks(ctx, body) .. "\n</blockquote>"
    elseif aligns and #split_row(line) == #aligns then
      out[#out + 1], i = render_table(ctx, lines, i, aligns)
    elseif list_item_of(line) then
      out[#out + 1], i = render_list(ctx, lines, i)
    else
      local para = {}
      repeat
        local text = lines[i]:match("^%s*(.-)$")
        if i < #lines and (text:match("  $") or text:match("\\$")) then
          text = text:gsub("\\$", ""):gsub("%s+$", "") .. BREAK
        else
          text = text:gsub("%s+$", "")
        end
        para[#para + 1] = text
        i = i + 1
      until i > #lines or is_blank(lines[i]) or interrupts(lines[i])
      local joined = table.concat(para, "\n"):gsub(BREAK .. "$", "")
      local html = inline(joined, ctx.opts)
      out[#out + 1] = tight and html or ("<p>" .. html .. "</p>")
    end
  end
  return table.concat(out, "\n")
end

local function split_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  return lines
end

--- Markdown text to HTML. opts.image(src): a replacement src for images
-- (e.g. a data URI for a local file) or nil; opts.code(source, lang): the
-- HTML of a fenced block's contents (e.g. highlighted) or nil; opts.ids:
-- a table of heading ids already used on the page (shared between calls
-- so ids stay unique).
function M.render(text, opts)
  opts = opts or {}
  local ctx = { opts = opts, ids = opts.ids or {} }
  return render_blocks(ctx, split_lines((text:gsub("[\1\2\3]", ""))))
end

return M
