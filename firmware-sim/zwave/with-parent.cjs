#!/usr/bin/env node
// Runs a Node script (the Z-Wave JS server) as a child and ends it when this process's stdin
// ends, i.e. when the test process that holds it dies, or on SIGTERM/SIGINT.
//
//   node with-parent.cjs node_modules/.bin/zwave-server tcp://127.0.0.1:PORT ...
"use strict";

const { spawn } = require("node:child_process");

const child = spawn(process.execPath, process.argv.slice(2), { stdio: ["ignore", "inherit", "inherit"] });
const stop = () => child.kill("SIGTERM");
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
