// Mock-node config for zwave-js's `mock-server`: a site of PIN door locks for Lockgate's tests.
//
//   ZW_RIG_LOCKS=2 ZW_RIG_SLOTS=30 ZW_RIG_S2=1 ZW_RIG_CONTROL_PORT=40123 \
//     node_modules/.bin/mock-server --port 40122 --config lock-rig.cjs
//
// Each lock (node 2, 3, ...) has User Code v2 (ZW_RIG_SLOTS slots, checksum, digits only),
// Door Lock, Notification (Access Control), Schedule Entry Lock (year-day), Time Parameters and
// Battery; with ZW_RIG_S2=1 every one of them only over S2 Access Control (keys in
// test-keys.json, which the Z-Wave JS server's config must hold too).
//
// Added to zwave-js's own mock behaviours:
// - a controller behaviour that re-frames the TCP byte stream (the mock server hands each TCP
//   read to the parser as one frame, so an ACK and the next frame in one read crash it);
// - Battery Get and Time Parameters Set/Get responders (zwave-js ships none);
// - a lock that refuses a code another slot already holds (Access Control event 15), as real
//   locks do;
// - a control channel for the tests, independent of Lockgate's driver: JSON lines on
//   127.0.0.1:ZW_RIG_CONTROL_PORT: {"op":"slots","node":2}, {"op":"press","node":2,
//   "code":"1234"}, {"op":"setlog","node":2}, {"op":"mute","node":2,"on":true},
//   {"op":"program","node":2,"slot":30,"code":"1234"}, {"op":"wait_sets","node":2,"count":5}
//   (answers once that many codes were written), {"op":"ping"}.
"use strict";

const net = require("node:net");
const fs = require("node:fs");
const path = require("node:path");

exports.default = function lockRig({ require }) {
	const { CommandClasses, SecurityClass } = require("@zwave-js/core");
	const cc = require("@zwave-js/cc");
	const { createMockZWaveRequestFrame } = require("@zwave-js/testing");

	const LOCKS = Number(process.env.ZW_RIG_LOCKS || 2);
	const SLOTS = Number(process.env.ZW_RIG_SLOTS || 30);
	const S2 = process.env.ZW_RIG_S2 === "1";
	const CONTROL_PORT = process.env.ZW_RIG_CONTROL_PORT; // "0": any free port (printed)
	const keys = JSON.parse(fs.readFileSync(path.join(__dirname, "test-keys.json"), "utf8"));

	const ACK = 0x06, NAK = 0x15, CAN = 0x18, SOF = 0x01;
	const ACCESS_CONTROL = 6;
	const KEYPAD_LOCK = 5, KEYPAD_UNLOCK = 6, DUPLICATE_CODE = 15;
	const userCodeKey = (slot) => `UserCode_userCode_${slot}`;
	const userStatusKey = (slot) => `UserCode_userIdStatus_${slot}`;

	// --- controller: re-frame the host's byte stream ----------------------------------------
	let pending = Buffer.alloc(0);
	const reframe = {
		onHostData(controller, data) {
			pending = Buffer.concat([pending, Buffer.from(data)]);
			for (;;) {
				if (pending.length === 0) break;
				const head = pending[0];
				if (head === ACK || head === NAK || head === CAN) {
					pending = pending.subarray(1);
					void controller.serialOnData(head);
					continue;
				}
				if (head !== SOF) {
					pending = pending.subarray(1); // noise: resynchronise on the next SOF
					continue;
				}
				if (pending.length < 2) break;
				const total = pending[1] + 2;
				if (pending.length < total) break;
				let sum = 0xff;
				for (let i = 1; i < total - 1; i++) sum ^= pending[i];
				if (sum !== pending[total - 1]) {
					pending = pending.subarray(1);
					continue;
				}
				const frame = Uint8Array.from(pending.subarray(0, total));
				pending = pending.subarray(total);
				void controller.serialOnData(frame);
			}
			return true;
		},
	};

	// --- lock behaviours -----------------------------------------------------------------------
	function secure(self, command) {
		if (!S2) return command;
		return cc.Security2CC.encapsulate(command, self.id, self.securityManagers);
	}

	async function notify(controller, self, event, slot) {
		const report = new cc.NotificationCCReport({
			nodeId: controller.ownNodeId,
			notificationType: ACCESS_CONTROL,
			notificationEvent: event,
			eventParameters: Uint8Array.of(slot),
		});
		await self.sendToController(createMockZWaveRequestFrame(secure(self, report), { ackRequested: true }));
	}

	const muted = {
		handleCC(controller, self) {
			if (self.state.get("Rig_muted")) return { action: "stop" };
		},
	};

	// zwave-js writes codes with User Code Set (v1) or Extended User Code Set (v2).
	function writesOf(received) {
		if (received instanceof cc.UserCodeCCSet) {
			return [{ userId: received.userId, userIdStatus: received.userIdStatus, userCode: received.userCode }];
		}
		if (received instanceof cc.UserCodeCCExtendedUserCodeSet) return received.userCodes;
		return undefined;
	}

	const refuseDuplicates = {
		handleCC(controller, self, received) {
			const writes = writesOf(received);
			if (!writes) return;
			const log = self.state.get("Rig_setLog") || [];
			for (const w of writes) log.push({ slot: w.userId, status: w.userIdStatus, code: String(w.userCode ?? "") });
			self.state.set("Rig_setLog", log);
			for (const wake of self.state.get("Rig_setWaiters") || []) wake();
			self.state.set("Rig_setWaiters", []);
			const refused = writes.find((w) => {
				if (w.userIdStatus !== cc.UserIDStatus.Enabled && w.userIdStatus !== cc.UserIDStatus.Disabled) return false;
				const code = String(w.userCode);
				for (let slot = 1; slot <= SLOTS; slot++) {
					if (slot === w.userId) continue;
					const status = self.state.get(userStatusKey(slot));
					const inUse = status === cc.UserIDStatus.Enabled || status === cc.UserIDStatus.Disabled;
					if (inUse && String(self.state.get(userCodeKey(slot))) === code) return true;
				}
				return false;
			});
			if (refused) {
				void notify(controller, self, DUPLICATE_CODE, refused.userId);
				return { action: "ok" }; // acknowledged, not stored: what locks do
			}
		},
	};

	// Many locks answer a User Code Get with the digits hidden: {"op":"mask","on":true}.
	const maskedCodes = {
		handleCC(controller, self, received) {
			if (!self.state.get("Rig_masked") || !(received instanceof cc.UserCodeCCGet)) return;
			const slot = received.userId;
			const code = self.state.get(userCodeKey(slot));
			const report = new cc.UserCodeCCReport({
				nodeId: controller.ownNodeId,
				userId: slot,
				userIdStatus: self.state.get(userStatusKey(slot)) ?? cc.UserIDStatus.Available,
				userCode: code ? "*".repeat(String(code).length) : undefined,
			});
			return { action: "sendCC", cc: report };
		},
	};

	const battery = {
		handleCC(controller, self, received) {
			if (received instanceof cc.BatteryCCGet) {
				const level = self.state.get("Rig_battery") ?? 87;
				return { action: "sendCC", cc: new cc.BatteryCCReport({ nodeId: controller.ownNodeId, level }) };
			}
		},
	};

	const lockTime = (self) => new Date(Date.now() + (self.state.get("Rig_clockOffsetMs") ?? 0));
	const timeParameters = {
		handleCC(controller, self, received) {
			if (received instanceof cc.TimeParametersCCSet) {
				self.state.set("Rig_clockOffsetMs", received.dateAndTime.getTime() - Date.now());
				self.state.set("Rig_clockSet", true);
				return { action: "ok" };
			}
			if (received instanceof cc.TimeParametersCCGet) {
				const report = new cc.TimeParametersCCReport({ nodeId: controller.ownNodeId, dateAndTime: lockTime(self) });
				return { action: "sendCC", cc: report };
			}
		},
	};

	function yearDayWindow(self, slot) {
		const kind = cc.ScheduleEntryLockScheduleKind.YearDay;
		const s = self.state.get(`ScheduleEntryLock_schedule_${slot}_1_${kind}`);
		if (!s) return undefined;
		return {
			start: Date.UTC(2000 + s.startYear, s.startMonth - 1, s.startDay, s.startHour, s.startMinute),
			stop: Date.UTC(2000 + s.stopYear, s.stopMonth - 1, s.stopDay, s.stopHour, s.stopMinute),
		};
	}

	// --- the control channel for the tests -----------------------------------------------------
	async function control(mockNodes, request) {
		if (request.op === "ping") return { ok: true };
		const node = mockNodes.find((n) => n.id === request.node);
		if (!node) return { error: `no node ${request.node}` };
		const controller = node.controller;
		switch (request.op) {
			case "slots": {
				const slots = {};
				for (let slot = 1; slot <= SLOTS; slot++) {
					const status = node.state.get(userStatusKey(slot));
					if (status === undefined || status === cc.UserIDStatus.Available) continue;
					slots[slot] = { status, code: String(node.state.get(userCodeKey(slot)) ?? "") };
					const w = yearDayWindow(node, slot);
					if (w) slots[slot].window = [new Date(w.start).toISOString(), new Date(w.stop).toISOString()];
				}
				return {
					slots,
					clock_set: !!node.state.get("Rig_clockSet"),
					lock_time: lockTime(node).toISOString(),
					door_mode: node.state.get("DoorLock_currentMode") ?? 0,
					door_timeout: node.state.get("DoorLock_lockTimeoutConfiguration") ?? null,
				};
			}
			case "setlog":
				return { sets: node.state.get("Rig_setLog") || [] };
			case "wait_sets": // answers once the lock has received `count` code writes
				for (;;) {
					const writes = (node.state.get("Rig_setLog") || []).filter((w) => w.slot > 0 && w.status === 1);
					if (writes.length >= request.count) return { count: writes.length };
					await new Promise((resolve) => {
						const waiters = node.state.get("Rig_setWaiters") || [];
						waiters.push(resolve);
						node.state.set("Rig_setWaiters", waiters);
					});
				}
			case "program": // what an owner does at the keypad: a code Lockgate did not put there
				node.state.set(userStatusKey(request.slot), cc.UserIDStatus.Enabled);
				node.state.set(userCodeKey(request.slot), String(request.code));
				return { ok: true };
			case "mute":
				node.state.set("Rig_muted", !!request.on);
				node.autoAckControllerFrames = !request.on;
				return { ok: true };
			case "mask":
				node.state.set("Rig_masked", !!request.on);
				return { ok: true };
			case "battery":
				node.state.set("Rig_battery", request.level);
				return { ok: true };
			case "press": {
				for (let slot = 1; slot <= SLOTS; slot++) {
					if (node.state.get(userStatusKey(slot)) !== cc.UserIDStatus.Enabled) continue;
					if (String(node.state.get(userCodeKey(slot))) !== String(request.code)) continue;
					const w = yearDayWindow(node, slot);
					const now = lockTime(node).getTime();
					if (w && (now < w.start || now >= w.stop)) return { slot, opened: false };
					node.state.set("DoorLock_currentMode", 0x00);
					await notify(controller, node, KEYPAD_UNLOCK, slot);
					return { slot, opened: true };
				}
				return { slot: null, opened: false };
			}
			case "lock_at_keypad":
				node.state.set("DoorLock_currentMode", 0xff);
				await notify(controller, node, KEYPAD_LOCK, request.slot ?? 0);
				return { ok: true };
			default:
				return { error: `unknown op ${request.op}` };
		}
	}

	function serveControl(mockNodes) {
		if (CONTROL_PORT === undefined) return;
		const server = net.createServer((socket) => {
			let buf = "";
			socket.on("data", (chunk) => {
				buf += chunk.toString("utf8");
				let nl;
				while ((nl = buf.indexOf("\n")) >= 0) {
					const line = buf.slice(0, nl);
					buf = buf.slice(nl + 1);
					let request;
					try {
						request = JSON.parse(line);
					} catch (e) {
						socket.write(JSON.stringify({ error: "bad json" }) + "\n");
						continue;
					}
					control(mockNodes, request).then(
						(answer) => socket.write(JSON.stringify(answer) + "\n"),
						(e) => socket.write(JSON.stringify({ error: String(e && e.message) }) + "\n"),
					);
				}
			});
			socket.on("error", () => {});
		});
		server.listen(Number(CONTROL_PORT), "127.0.0.1", () => console.log(`Rig control on ${server.address().port}`));
	}

	// --- the nodes -----------------------------------------------------------------------------
	const secureFlag = S2 ? { secure: true } : {};
	function lockNode(id) {
		return {
			id,
			capabilities: {
				genericDeviceClass: 0x40, // Entry Control
				specificDeviceClass: 0x03, // Secure Keypad Door Lock
				manufacturerId: 0x003b,
				productType: 0x0001,
				productId: 0x0469,
				securityClasses: S2 ? new Set([SecurityClass.S2_AccessControl]) : new Set(),
				commandClasses: [
					...(S2 ? [{ ccId: CommandClasses["Security 2"], isSupported: true, version: 1 }] : []),
					// Supervision: the lock confirms each Set (S2 locks certified today all have it)
					{ ccId: CommandClasses.Supervision, isSupported: true, version: 2 },
					{ ccId: CommandClasses["User Code"], version: 2, numUsers: SLOTS, supportedASCIIChars: "0123456789", ...secureFlag },
					{
						ccId: CommandClasses["Door Lock"],
						version: 4,
						supportedOperationTypes: [1, 2], // constant, timed (relocks by itself)
						supportedDoorLockModes: [0x00, 0x01, 0xff],
						...secureFlag,
					},
					{ ccId: CommandClasses.Notification, version: 8, notificationTypesAndEvents: { [ACCESS_CONTROL]: [1, 2, 5, 6, 11, 15] }, ...secureFlag },
					{ ccId: CommandClasses["Schedule Entry Lock"], version: 3, numWeekDaySlots: 0, numYearDaySlots: 1, numDailyRepeatingSlots: 0, ...secureFlag },
					{ ccId: CommandClasses["Time Parameters"], version: 1, ...secureFlag },
					{ ccId: CommandClasses.Battery, version: 1, ...secureFlag },
				],
			},
			behaviors: [muted, maskedCodes, battery, timeParameters, refuseDuplicates],
		};
	}

	const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
	return {
		controller: {
			behaviors: [reframe],
			...(S2
				? {
						securityKeys: {
							S2_AccessControl: hex(keys.S2_AccessControl),
							S2_Authenticated: hex(keys.S2_Authenticated),
							S2_Unauthenticated: hex(keys.S2_Unauthenticated),
							S0_Legacy: hex(keys.S0_Legacy),
						},
					}
				: {}),
		},
		nodes: Array.from({ length: LOCKS }, (_, i) => lockNode(i + 2)),
		onInit(_controller, mockNodes) {
			serveControl(mockNodes);
		},
	};
};
