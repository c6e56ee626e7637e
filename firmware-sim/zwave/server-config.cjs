// Driver options for `zwave-server` in the test rig: the rig's test network keys and a cache
// directory per rig (ZW_RIG_CACHE_DIR), so a restarted server finds its interview results.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const keys = JSON.parse(fs.readFileSync(path.join(__dirname, "test-keys.json"), "utf8"));
const cacheDir = process.env.ZW_RIG_CACHE_DIR || path.join(__dirname, ".cache");

module.exports = {
	securityKeys: {
		S0_Legacy: keys.S0_Legacy,
		S2_AccessControl: keys.S2_AccessControl,
		S2_Authenticated: keys.S2_Authenticated,
		S2_Unauthenticated: keys.S2_Unauthenticated,
	},
	storage: { cacheDir, deviceConfigPriorityDir: path.join(cacheDir, "config") },
	logConfig: { enabled: process.env.ZW_RIG_LOG === "1", level: "debug", logToFile: false },
	features: { softReset: false },
	emitValueUpdateAfterSetValue: true,
};
