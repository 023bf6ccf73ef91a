--- strata.notebook.lex: a Lua 5.4 tokenizer that keeps every byte.
--
--   for _, t in ipairs(lex.tokens(source)) do print(t.kind, t.text, t.line) end
--
-- The tokens cover the source exactly (concatenating their text gives it
-- back), so the notebook can rewrite a few tokens of a cell and colour code
-- for the page. Kinds: "space", "comment", "string", "number", "name",
-- "keyword", "op". Malformed input (an unfinished string or comment) never
-- fails: the token runs to where it stops, and load() reports the error.
local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then
  true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end
M.KEYWORDS = KEYWORDS

local OPS3 = { ["..."] = true }
local OPS2 = {
  [".."] = true, ["=="] = true, ["~="] = true, ["<="] = true, [">="] = true, ["//"] = true, ["::"] = true,
  ["<<"] = true, [">>"] = true,
}

-- End of a long bracket opened at i ("[", "=" * level, "["), or nil when
-- there is no long bracket there.
local function long_bracket(s, i)
  local eq = s:match("^%[(=*)%[", i)
  if not eq then return nil end
  local close = "]" .. eq .. "]"
  local _, e = s:find(close, i + #eq + 2, true)
  return e or #s
end

-- End of a quoted string starting at i.
local function quoted(s, i)
  local q = s:sub(i, i)
  local j = i + 1
  while j <= #s do
    local c = s:sub(j, j)
    if c == "\\" then
      j = j + 2
    elseif c == q then
      return j
    elseif c == "\n" then
      return j - 1 -- unfinished: stop before the line end
    else
      j = j + 1
    end
  end
  return #s
end

local function number_end(s, i)
  local e = select(2, s:find("^0[xX][%x%.]*", i))
  if e then
    return select(2, s:find("^[pP][+-]?%d+", e + 1)) or e
  end
  e = select(2, s:find("^%d*%.?%d*", i))
  return select(2, s:find("^[eE][+-]?%d+", e + 1)) or e
end

--- The tokens of `s`: a list of {kind =, text =, pos =, line =}; pos is
-- the byte offset of the token, line its first line (from 1).
function M.tokens(s)
  local out, i, line = {}, 1, 1
  local n = #s
  while i <= n do
    local c = s:sub(i, i)
    local kind, e
    if c:match("%s") then
      kind, e = "space", select(2, s:find("^%s+", i))
    elseif s:sub(i, i + 1) == "--" then
      kind = "comment"
      e = long_bracket(s, i + 2) or (s:find("\n", i, true) or n + 1) - 1
    elseif c == "[" and long_bracket(s, i) then
      kind, e = "string", long_bracket(s, i)
    elseif c == '"' or c == "'" then
      kind, e = "string", quoted(s, i)
    elseif c:match("%d") or (c == "." and s:sub(i + 1, i + 1):match("%d")) then
      kind, e = "number", number_end(s, i)
    elseif c:match("[%a_]") then
      e = select(2, s:find("^[%w_]+", i))
      kind = KEYWORDS[s:sub(i, e)] and "keyword" or "name"
    else
      kind = "op"
      e = OPS3[s:sub(i, i + 2)] and i + 2 or OPS2[s:sub(i, i + 1)] and i + 1 or i
    end
    local text = s:sub(i, e)
    out[#out + 1] = { kind = kind, text = text, pos = i, line = line }
    local _, newlines = text:gsub("\n", "")
    line = line + newlines
    i = e + 1
  end
  return out
end

--- True for tokens that matter to the parser (not space, not comments).
function M.significant(t) return t.kind ~= "space" and t.kind ~= "comment" end

return M
