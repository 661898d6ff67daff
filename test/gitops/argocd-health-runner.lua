-- Runs an Argo CD health check as Argo CD does (the object as the global `obj`, the chunk returning
-- the health), on the object read as JSON from standard input; prints the health as JSON.
local cjson = require("cjson")
obj = cjson.decode(io.read("*a"))
io.write(cjson.encode(dofile(arg[1])))
