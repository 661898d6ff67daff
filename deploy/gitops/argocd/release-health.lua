-- Argo CD's health check for bluegreen.dev/Release (resource.customizations.health.bluegreen.dev_Release
-- in argocd-cm; the README says how to add it). Read from the status the controller writes:
--   Progressing  the controller has not taken up the newest generation yet, or its deployment runs
--   Suspended    the deployment waits for an operator (an approval gate, or paused for a decision)
--   Degraded     it is rolling back, rolled back or failed, or the controller says Degraded (a bad spec)
--   Healthy      the newest generation's deployment succeeded
hs = {}
local status = obj.status
local generation = obj.metadata.generation or 0
if status == nil or (status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to start generation " .. tostring(generation)
  return hs
end
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Degraded" and condition.status == "True" then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
  end
end
local phase = status.phase or ""
local detail = status.message or phase
if status.outcome == "Succeeded" then
  hs.status = "Healthy"
elseif status.outcome == "RolledBack" or status.outcome == "Failed" or phase == "RollingBack" then
  hs.status = "Degraded"
  if status.reason ~= nil then detail = status.reason .. ": " .. detail end
elseif phase == "AwaitingApproval" or phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
  if status.step ~= nil and status.weight ~= nil then
    detail = phase .. ": step " .. tostring(status.step) .. ", " .. tostring(status.weight) .. " % to the canary"
  end
end
hs.message = detail
return hs
