--- strata.notebook.parse: a notebook file as cells, and cells as chunks.
--
--   local cells = parse.split(source)
--   -- {kind = "markdown", text = ..., line = n} / {kind = "code", code = ..., line = n}
--   local body, shows = parse.chunk(cell.code)
--
-- A notebook is a Lua file. A markdown cell is a long comment that opens
-- with `--[[md` (or `--[==[md`, any level) at the start of a line and runs
-- to its closing bracket; everything between markdown cells is code. A
-- line comment `-- %%` at the start of a line splits code without prose.
-- Because the cells are found with a Lua tokenizer, `--[[md` inside a
-- string is not a cell.
local lex = require "strata.notebook.lex"

local M = {}

local function blank(s) return s:match("^%s*$") ~= nil end

-- Removes the indentation common to all non-blank lines.
local function dedent(text)
  local common
  for line in text:gmatch("[^\n]*") do
    if not blank(line) then
      local ind = line:match("^[ \t]*")
      if not common or #ind < #common then common = ind end
    end
  end
  if not common or common == "" then return text end
  return (text:gsub("[^\n]*", function(line)
    return line:sub(1, #common) == common and line:sub(#common + 1) or line
  end))
end

--- The cells of a notebook source, in order.
function M.split(source)
  local cells = {}
  local pending, pending_line = {}, 1
  local function flush()
    local text = table.concat(pending):gsub("%s+$", "")
    if text ~= "" then cells[#cells + 1] = { kind = "code", code = text, line = pending_line } end
    pending = {}
  end
  if source:sub(1, 2) == "#!" then source = source:gsub("^[^\n]*", "") end -- as lua does
  for _, t in ipairs(lex.tokens(source)) do
    local at_line_start = t.pos == 1 or source:sub(t.pos - 1, t.pos - 1) == "\n"
    local eq = t.kind == "comment" and at_line_start and t.text:match("^%-%-%[(=*)%[md%f[^%w_]")
    if eq then
      flush()
      local body = t.text:sub(#eq + 7) -- after "--[", "=" * level, "[md"
      local close = "]" .. eq .. "]"
      if body:sub(-#close) == close then body = body:sub(1, -#close - 1) end
      body = body:gsub("^[ \t]+", ""):gsub("^\n", "")
      cells[#cells + 1] = { kind = "markdown", text = dedent(body):gsub("%s+$", ""), line = t.line }
    elseif t.kind == "comment" and at_line_start and t.text:match("^%-%-%s*%%%%") then
      flush()
    elseif #pending > 0 or t.kind ~= "space" then
      if #pending == 0 then pending_line = t.line end
      pending[#pending + 1] = t.text
    end
  end
  flush()
  return cells
end

---------------------------------------------------------------- locals

-- Top-level `local` declarations of a cell become assignments to the
-- notebook's environment, so later cells see them, as they would in the
-- script. `<close>` locals stay local to their cell (their point is to be
-- closed when it ends); `<const>` is dropped. Line numbers are kept.
local function rewrite_locals(code)
  local toks = lex.tokens(code)
  local sig = {}
  for i, t in ipairs(toks) do
    if lex.significant(t) then sig[#sig + 1] = i end
  end
  local depth, pending_do = 0, 0
  local k = 1
  while k <= #sig do
    local t = toks[sig[k]]
    local w = t.kind == "keyword" and t.text
    if w == "function" or w == "if" or w == "repeat" then
      depth = depth + 1
    elseif w == "while" or w == "for" then
      depth, pending_do = depth + 1, pending_do + 1
    elseif w == "do" then
      if pending_do > 0 then pending_do = pending_do - 1 else depth = depth + 1 end
    elseif w == "end" or w == "until" then
      depth = depth - 1
    elseif w == "local" and depth == 0 then
      local nxt = toks[sig[k + 1] or 0]
      if nxt and nxt.text == "function" then
        t.text = ""
      else
        -- name [<attrib>] {, name [<attrib>]}
        local j, attribs, close, last = k + 1, {}, false, nil
        while sig[j] and toks[sig[j]].kind == "name" do
          last = j
          j = j + 1
          if sig[j + 2] and toks[sig[j]].text == "<" and toks[sig[j + 2]].text == ">" then
            local a = toks[sig[j + 1]].text
            close = close or a == "close"
            attribs[#attribs + 1] = j
            j = j + 3
          end
          if not (sig[j] and toks[sig[j]].text == ",") then break end
          j = j + 1
        end
        if last and not close then
          t.text = ""
          for _, a in ipairs(attribs) do
            for m = a, a + 2 do toks[sig[m]].text = "" end
          end
          local follow = sig[last + 1 + (attribs[#attribs] == last + 1 and 3 or 0)]
          if not (follow and toks[follow].text == "=") then toks[sig[last]].text = toks[sig[last]].text .. " = nil;" end
        end
        k = j - 1
      end
    end
    k = k + 1
  end
  local out = {}
  for i, t in ipairs(toks) do out[i] = t.text end
  return table.concat(out)
end
M.rewrite_locals = rewrite_locals

local function compiles(code) return load(code, "=cell", "t", {}) ~= nil end

--- The chunk a code cell runs as, and whether it returns the values of
-- its last statement, packed by the function `pack` names (a global the
-- runner provides; a plain `return f()` would be a tail call and lose the
-- cell's line from tracebacks). Values are shown when the last statement
-- is a function call not followed by `;` (the only expression that is
-- also a statement, so the notebook still runs as a plain script).
function M.chunk(code, pack)
  local body = rewrite_locals(code)
  if not compiles(body) then return body, false end
  local toks = lex.tokens(body)
  local starts, last_line, last_sig = {}, nil, nil
  for _, t in ipairs(toks) do
    if lex.significant(t) then
      if t.line ~= last_line then starts[#starts + 1] = t end
      last_line, last_sig = t.line, t
    end
  end
  if not last_sig or last_sig.text == ";" then return body, false end
  for s = #starts, math.max(1, #starts - 64), -1 do
    local t = starts[s]
    -- a line starting with "(" would continue the previous statement in Lua
    if t.kind == "name" then
      local head, tail = body:sub(1, t.pos - 1), body:sub(t.pos)
      if compiles(tail) and compiles("return " .. tail) and compiles(head) then
        return head .. "return " .. pack .. "(" .. tail .. "\n)", true
      end
    end
  end
  return body, false
end

return M
