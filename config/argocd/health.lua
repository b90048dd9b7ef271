-- Argo CD health check of streaming.sluice.dev/StreamQuery.
-- Maps the status the Sluice operator writes to an Argo CD health status.
local hs = {}
if obj.status == nil or (obj.status.phase == nil and obj.status.conditions == nil) then
  hs.status = "Missing"
  hs.message = "The operator has not reconciled this query yet: it has no engines"
  return hs
end
local st = obj.status
local function condition(t)
  if st.conditions ~= nil then
    for _, c in ipairs(st.conditions) do
      if c.type == t then
        return c
      end
    end
  end
  return nil
end
if obj.metadata.generation ~= nil and (st.observedGeneration == nil or st.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
if st.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "The query is suspended"
  return hs
end
local ready = condition("Ready")
if st.phase == "Succeeded" then
  -- A Batch query whose run ended: done, as a completed Job is.
  hs.status = "Healthy"
  if ready ~= nil and ready.message ~= nil then
    hs.message = ready.message
  else
    hs.message = "The run ended"
  end
  return hs
end
local degraded = condition("Degraded")
local progressing = condition("Progressing")
if st.phase == "Failed" then
  hs.status = "Degraded"
  if ready ~= nil and ready.message ~= nil then
    hs.message = ready.message
  else
    hs.message = st.lastError or "The query failed"
  end
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.message
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = progressing.message
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Waiting for the engines"
end
return hs
