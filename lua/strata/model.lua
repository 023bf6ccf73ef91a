--- strata.model: trained networks.
--
--   local net = strata.model.load("resnet56.safetensors")  -- or nil, message
--   print(net)                       -- layers, tap names and shapes
--   for _, t in ipairs(net:taps()) do print(t.name, table.concat(t.shape, "x")) end
--   local logits, taps = net:forward(x, {"layer1", "activation_54"})
--   local labels = net:predict(x)    -- i64 class ids (from 0)
--
-- The architecture, input size, preprocessing and class names come from
-- the file's metadata (docs/model-format.md). forward returns copies, so
-- they stay valid across calls.
local core = require "strata.core"

local M = {}

--- Loads a safetensors model; returns the net, or nil and a message.
function M.load(path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'load' (path: string expected, got %s)"):format(type(path)), 2)
  end
  local net, err = core.model_load(path)
  if not net then return nil, err end
  return net
end

return M
