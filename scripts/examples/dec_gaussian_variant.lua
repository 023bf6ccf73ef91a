-- A clustering variant written in Lua from the trainer's pieces: IDEC with
-- a Gaussian kernel instead of the Student-t,
--     q_ij = softmax_j( -|z_i - mu_j|^2 / (2 sigma^2) ),
-- trained with the reference's schedule (target distribution over all rows
-- every `update_interval` iterations, batches in dataset order, loss
-- kl_weight * KL(p || q) + mse_weight * MSE, a fresh Adam).
--
-- It starts where the C trainer's first two stages leave off: a trainer
-- run with maxiter = 0 pretrains the autoencoder and initialises the
-- centroids by k-means; its checkpoint carries the autoencoder weights
-- into a Lua-side autoencoder (strata.dec.cae). sigma^2 defaults to the
-- mean squared distance of the embeddings to their k-means centre.
--
--   strata scripts/examples/dec_gaussian_variant.lua     trains on blobs, prints purity
--   local variant = loadfile("dec_gaussian_variant.lua")("--lib")
--   local r = variant.fit(x, {clusters = 3, epochs = 2, maxiter = 60})
local strata = require "strata"
local dec = strata.dec

local M = {}

-- Squared distances [n,k] between the rows of z [n,d] and mu [k,d].
local function sqdist(z, mu)
  local zz = (z * z):sum(2, true)
  local mm = (mu * mu):sum(2):reshape(1, -1)
  return (z:matmul(mu:transpose()) * -2 + zz + mm):clamp(0)
end

--- Gaussian soft assignments q [n,k] (a softmax, stable for any distance).
function M.gaussian_q(z, mu, sigma2)
  local logits = sqdist(z, mu) * (-0.5 / sigma2)
  local e = (logits - logits:max(2, true)):exp()
  return e / e:sum(2, true)
end

--- Gradients of a loss through gaussian_q: from dq [n,k] to dz [n,d] and
-- dmu [k,d]. With s_i = sum_j dq_ij q_ij, dlogit = q * (dq - s), and
-- dlogit_ij / d z_i = -(z_i - mu_j) / sigma^2 = -d dlogit_ij / d mu_j.
function M.gaussian_backward(z, mu, q, dq, sigma2)
  local dl = q * (dq - (dq * q):sum(2, true))
  local rows = dl:sum(2, true)   -- [n,1] (zero up to rounding: softmax rows)
  local cols = dl:sum(1):reshape(-1, 1) -- [k,1]
  local dz = (dl:matmul(mu) - z * rows) * (1 / sigma2)
  local dmu = (dl:transpose():matmul(z) - mu * cols) * (1 / sigma2)
  return dz, dmu
end

-- Cluster ids from 0 (a Lua list) of the rows of q.
local function argmax_ids(q)
  local ids = q:argmax(2):totable()
  for i = 1, #ids do ids[i] = ids[i] - 1 end
  return ids
end

local OPTS = { clusters = true, epochs = true, maxiter = true, update_interval = true, batch = true,
  kl_weight = true, mse_weight = true, sigma2 = true, filters = true, seed = true, dir = true }

--- Trains the variant on x [N,H,W,C] f32. Returns {labels (list of ids
-- from 0), q, centroids, init_labels (k-means, i64 tensor), sigma2, losses = {{total, kl, mse}, ...},
-- updates = {{ite, delta}, ...}}.
function M.fit(x, opts)
  for k in pairs(opts) do
    if not OPTS[k] then error(("bad argument #2 to 'fit' (unknown option '%s')"):format(tostring(k)), 2) end
  end
  assert(opts.dir, "fit: opts.dir (a scratch directory for the stage-1 checkpoint) is required")
  local n, h, w, c = table.unpack(x:shape())
  local B, K = opts.batch or 32, opts.clusters or 15
  local filters = opts.filters or { 32, 64, 128, 20 }

  -- stages 1-2 by the C trainer; its checkpoint hands over the weights
  local tr = dec.new({ h, w, c }, { clusters = K, epochs = opts.epochs or 3, maxiter = 0, batch = B,
    filters = filters, seed = opts.seed or 0, dir = opts.dir })
  local init = assert(tr:fit(x))
  local path = opts.dir .. "/checkpoint.safetensors"
  local saved = assert(strata.load_safetensors(path))
  tr:free()
  local cae = dec.cae(h, w, c, { filters = filters, max_batch = B })
  local params, grads = cae:parameters(), cae:gradients()
  for i, name in ipairs(cae:names()) do params[i]:assign(saved["cae." .. name]) end
  local mu = init.centroids:clone()
  local dmu
  local sigma2 = opts.sigma2
  if not sigma2 then
    local d2 = sqdist(init.embeddings, mu)
    sigma2 = d2:min(2):mean()
  end

  -- stage 3 with the Gaussian kernel
  local all_params, all_grads = {}, {}
  for i = 1, #params do all_params[i], all_grads[i] = params[i], grads[i] end
  all_params[#all_params + 1] = mu
  local opt = dec.optim(cae:param_count() + mu:numel())
  local kw, mw = opts.kl_weight or 0.1, opts.mse_weight or 1.0
  local maxiter, interval = opts.maxiter or 280, opts.update_interval or 140
  local function q_all()
    local parts = {}
    for first = 1, n, B do
      local last = math.min(first + B - 1, n)
      parts[#parts + 1] = M.gaussian_q(cae:encode(x:slice(1, first, last):contiguous()), mu, sigma2)
    end
    return strata.concat(parts, 1)
  end
  local p, last_labels = nil, init.labels:totable()
  local index = 0
  local r = { losses = {}, updates = {}, init_labels = init.labels, sigma2 = sigma2 }
  for ite = 0, maxiter - 1 do
    if ite % interval == 0 then
      local q = q_all()
      p = dec.target_distribution(q)
      local labels = argmax_ids(q)
      local changed = 0
      for i = 1, n do
        if labels[i] ~= last_labels[i] then changed = changed + 1 end
      end
      local delta = changed / n
      last_labels = labels
      r.updates[#r.updates + 1] = { ite, delta }
    end
    local first, last = B * index + 1, math.min(B * (index + 1), n)
    index = B * (index + 1) <= n and index + 1 or 0
    if last >= first then
      local xb = x:slice(1, first, last):contiguous()
      local z = cae:encode(xb)
      local q = M.gaussian_q(z, mu, sigma2)
      local kl, dq = dec.loss_kld(p:slice(1, first, last):contiguous(), q, kw)
      local xhat = cae:decode(z)
      local mse, dxhat = dec.loss_mse(xhat, xb, mw)
      local dz
      dz, dmu = M.gaussian_backward(z, mu, q, dq, sigma2)
      cae:backward(dxhat, dz)
      all_grads[#params + 1] = dmu
      opt:step(all_params, all_grads)
      r.losses[#r.losses + 1] = { kw * kl + mw * mse, kl, mse }
    end
  end
  local q = q_all()
  r.q, r.labels, r.centroids = q, argmax_ids(q), mu
  return r
end

-- Three well separated blobs of 8x8x2 "activations" and their classes (a
-- list of ids from 0; row i has class (i-1) % 3).
function M.blobs(n, seed)
  local rng = strata.rng(seed or 1)
  local centres = strata.rand(rng, { 3, 8 * 8 * 2 }) * 2
  local rows = {}
  for i = 1, n do rows[i] = (i - 1) % 3 + 1 end
  local x = centres:index_select(1, rows) + strata.randn(rng, { n, 8 * 8 * 2 }) * 0.1
  local classes = {}
  for i = 1, n do classes[i] = rows[i] - 1 end
  return x:reshape(n, 8, 8, 2):contiguous(), classes
end

if ... == "--lib" then return M end

local x, classes = M.blobs(300, 7)
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")
local r = M.fit(x, { clusters = 3, epochs = 2, maxiter = 60, update_interval = 20, filters = { 8, 8, 8, 4 },
  seed = 1, dir = dir })
os.remove(dir .. "/checkpoint.safetensors")
os.remove(dir)
print(("sigma^2 %.4g; k-means purity %.3f, Gaussian IDEC purity %.3f"):format(r.sigma2,
  dec.report(r.init_labels, classes, 3).purity, dec.report(r.labels, classes, 3).purity))
print(("loss first %.4g, last %.4g"):format(r.losses[1][1], r.losses[#r.losses][1]))
