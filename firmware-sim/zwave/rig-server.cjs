#!/usr/bin/env node
// Starts zwave-js's mock controller and mock nodes from a mock-server config (the format of
// zwave-js's `mock-server --config`), serving the serial API on 127.0.0.1 only.
//
//   node rig-server.cjs --port 0 --config lock-rig.cjs
//
// It does what zwave-js's `mock-server` command does (the same MockController, MockNode and
// default behaviours), without the mDNS advertisement that command always sends and without
// listening on every interface: a test rig talks to nobody but the loopback. Prints
// "Server listening on tcp://127.0.0.1:PORT" when ready.
"use strict";

const net = require("node:net");
const path = require("node:path");
const { MockController, MockNode } = require("@zwave-js/testing");
const { createAndOpenMockedZWaveSerialPort } = require("@zwave-js/serial/mock");
const { Faucet, ZWaveSerialFrameType } = require("@zwave-js/serial");
const { createDefaultMockControllerBehaviors, createDefaultMockNodeBehaviors } = require("zwave-js/Testing");

function arg(name, fallback) {
	const i = process.argv.indexOf(name);
	return i === -1 ? fallback : process.argv[i + 1];
}

async function main() {
	const port = Number(arg("--port", "0"));
	const configPath = path.resolve(arg("--config", path.join(__dirname, "lock-rig.cjs")));
	let config = require(configPath).default;
	if (typeof config === "function") config = config({ require });

	const { serial, port: mockPort } = await createAndOpenMockedZWaveSerialPort();
	const { behaviors: controllerBehaviors, ...controllerOptions } = config.controller ?? {};
	const controller = await MockController.create({
		homeId: 0x7e570001,
		ownNodeId: 1,
		...controllerOptions,
		mockPort,
		serial,
	});
	controller.defineBehavior(...createDefaultMockControllerBehaviors());
	if (controllerBehaviors) controller.defineBehavior(...controllerBehaviors);
	const nodes = [];
	for (const { behaviors, ...options } of config.nodes ?? []) {
		const node = await MockNode.create({ ...options, controller });
		controller.addNode(node);
		node.defineBehavior(...createDefaultMockNodeBehaviors());
		if (behaviors) node.defineBehavior(...behaviors);
		nodes.push(node);
	}
	if (typeof config.onInit === "function") await config.onInit(controller, nodes);

	const faucet = new Faucet(serial.readable);
	const server = net.createServer((socket) => {
		const writable = new WritableStream({
			write(chunk) {
				if (chunk.type !== ZWaveSerialFrameType.SerialAPI) return;
				socket.write(typeof chunk.data === "number" ? Uint8Array.from([chunk.data]) : chunk.data);
			},
		});
		faucet.connect(writable);
		socket.on("close", () => {
			faucet.disconnect();
			void writable.close();
		});
		socket.on("error", () => {});
		socket.on("data", (chunk) => {
			serial.writeAsync(chunk).catch((e) => console.error("serial write failed", e));
		});
	});
	server.maxConnections = 1;
	server.listen({ host: "127.0.0.1", port }, () => {
		console.log(`Server listening on tcp://127.0.0.1:${server.address().port}`);
	});
	const stop = () => {
		server.close();
		controller.destroy();
		process.exit(0);
	};
	// A host that goes away mid-exchange (the Z-Wave JS server restarted) leaves the mock
	// controller waiting for an ACK that never comes; its rejection must not end the process:
	// a real controller stick just drops that callback.
	process.on("unhandledRejection", (e) => console.error("host did not answer:", e?.message ?? e));
	// The test process holds our stdin open: when it dies (killed, timed out), stdin ends and
	// the mock goes too, instead of outliving it.
	process.stdin.on("end", stop);
	process.stdin.on("error", stop);
	process.stdin.resume();
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
