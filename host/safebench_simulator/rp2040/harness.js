'use strict';
// An emulated Raspberry Pi Pico (rp2040js): boot ROM + flash image, USB CDC on stdin/stdout.
//
//   node harness.js --bootrom B1.bin --flash FLASH.img [--uf2 IMAGE.uf2] [--uart0 FD] [--uart1 FD]
//
// --flash is the board's 2 MB flash, persisted: loaded when it exists, else made from --uf2; rewritten
// (shortly after) whenever the guest programs or erases it, so its littlefs survives a restart.
// --uartN FD wires UART N to an inherited stream socket (uart_line.js: bytes in guest time).
// machine.reset() powers a new chip up on the same flash and wires. Status lines go to stderr ("ready",
// "flash saved"); stdout carries only the CDC's bytes.
const fs = require('fs');
const net = require('net');
const { Simulator, USBCDC, ConsoleLogger, LogLevel } = require('rp2040js');
const { FlashChip } = require('./flash_chip.js');
const { UartLine } = require('./uart_line.js');

const FLASH_BASE = 0x10000000;
const FLASH_SIZE = 2 * 1024 * 1024; // the Pico's W25Q16
const UF2_MAGIC = [0x0a324655, 0x9e5d5157, 0x0ab16f30];
const CYCLE_NANOS = 8; // 125 MHz
const BATCH_CYCLES = 250000; // 2 ms of guest time between looks at the host's I/O

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

function uf2Blocks(image) {
  const blocks = [];
  for (let at = 0; at + 512 <= image.length; at += 512) {
    const words = [0, 4, 508].map((o) => image.readUInt32LE(at + o));
    if (words[0] !== UF2_MAGIC[0] || words[1] !== UF2_MAGIC[1] || words[2] !== UF2_MAGIC[2]) {
      throw new Error(`not a UF2 block at offset ${at}`);
    }
    const address = image.readUInt32LE(at + 12);
    const size = image.readUInt32LE(at + 16);
    blocks.push({ address, payload: image.subarray(at + 32, at + 32 + size) });
  }
  return blocks;
}

function loadFlash(mcu, args) {
  if (fs.existsSync(args.flash)) {
    mcu.flash.set(fs.readFileSync(args.flash).subarray(0, FLASH_SIZE));
    return;
  }
  if (!args.uf2) throw new Error('no flash image and no --uf2 to make one from');
  for (const { address, payload } of uf2Blocks(fs.readFileSync(args.uf2))) {
    mcu.flash.set(payload, address - FLASH_BASE);
  }
  saveFlash(mcu.flash, args.flash);
}

function saveFlash(flash, path) {
  const temporary = `${path}.tmp`;
  fs.writeFileSync(temporary, flash.subarray(0, FLASH_SIZE));
  fs.renameSync(temporary, path);
}

// Hands the guest's OUT endpoint only what it asked for; holds a read the host has no bytes for yet
// (a real host NAKs until it has data), and pauses the input stream while bytes wait, so none is lost.
// Bytes still waiting when the chip resets go to the next power-on's CDC.
class CdcBridge {
  constructor(input, output) {
    this.input = input;
    this.output = output;
    this.pending = [];
    this.pendingBytes = 0;
    input.on('data', (chunk) => {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes > 4096) input.pause();
      this.serve();
      this.wake();
    });
  }

  attach(usb, wake, onConnected) {
    this.usb = usb;
    this.wake = wake;
    this.waitingRead = null;
    this.cdc = new USBCDC(usb);
    this.cdc.onSerialData = (bytes) => this.output.write(Buffer.from(bytes));
    this.cdc.onDeviceConnected = onConnected;
    usb.onEndpointRead = (endpoint, size) => {
      if (endpoint !== this.cdc.outEndpoint) return;
      this.waitingRead = { endpoint, size };
      this.serve();
    };
  }

  serve() {
    if (!this.waitingRead || this.pendingBytes === 0) return;
    const { endpoint, size } = this.waitingRead;
    this.waitingRead = null;
    const packet = Buffer.alloc(Math.min(size, this.pendingBytes));
    let filled = 0;
    while (filled < packet.length) {
      const head = this.pending[0];
      const taken = Math.min(head.length, packet.length - filled);
      head.copy(packet, filled, 0, taken);
      filled += taken;
      if (taken === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(taken);
    }
    this.pendingBytes -= packet.length;
    if (this.pendingBytes <= 4096) this.input.resume();
    this.usb.endpointReadDone(endpoint, new Uint8Array(packet));
  }
}

// Runs the core, never letting guest time get ahead of wall time: a sleeping core (WFI/WFE) skips
// to its next alarm only as far as the wall clock has come; a computing core runs at emulation speed,
// and the anchor follows it when it falls behind, so each later wait still lasts its full time.
class Runner {
  constructor(simulator) {
    this.mcu = simulator.rp2040;
    this.clock = simulator.clock;
    this.timer = null;
    this.stopped = false;
    this.anchor = process.hrtime.bigint();
    this.guestStart = this.clock.nanos;
  }

  wallLimit() {
    return this.guestStart + Number(process.hrtime.bigint() - this.anchor);
  }

  run() {
    this.timer = null;
    const { mcu, clock } = this;
    const until = Math.min(clock.nanos + BATCH_CYCLES * CYCLE_NANOS, this.wallLimit());
    while (clock.nanos < until && !this.stopped) {
      if (mcu.core.waiting) {
        const next = clock.nanos + clock.nanosToNextAlarm;
        if (!clock.nanosToNextAlarm || next > until) {
          clock.tick(until - clock.nanos);
          break;
        }
        clock.tick(next - clock.nanos);
      } else {
        clock.tick(mcu.core.executeInstruction() * CYCLE_NANOS);
      }
    }
    if (this.stopped) return;
    const limit = this.wallLimit();
    if (clock.nanos < limit - 1e6) {
      // emulation is slower than real time here: re-anchor so that the guest does not sprint to catch up
      this.guestStart = clock.nanos;
      this.anchor = process.hrtime.bigint();
    }
    const ahead = clock.nanos - this.wallLimit();
    this.schedule(mcu.core.waiting || ahead > 0 ? Math.max(1, Math.min(5, ahead / 1e6)) : 0);
  }

  schedule(delayMs) {
    if (this.timer) return;
    this.timer = delayMs ? setTimeout(() => this.run(), delayMs) : setImmediate(() => this.run());
    this.delayed = !!delayMs;
  }

  stop() {
    this.stopped = true;
    if (this.timer) (this.delayed ? clearTimeout : clearImmediate)(this.timer);
    this.timer = null;
  }

  wake() {
    if (this.timer && this.delayed) {
      clearTimeout(this.timer);
      this.timer = null;
      this.schedule(0);
    }
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const bootrom = new Uint32Array(new Uint8Array(fs.readFileSync(args.bootrom)).buffer);
  const bridge = new CdcBridge(process.stdin, process.stdout);
  const lines = [0, 1]
    .filter((index) => args[`uart${index}`] !== undefined)
    .map((index) => {
      const stream = new net.Socket({ fd: Number(args[`uart${index}`]), readable: true, writable: true });
      return new UartLine(index, stream);
    });
  let mcu = null;
  let runner = null;
  let saveTimer = null;
  const flushFlash = () => {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = null;
    saveFlash(mcu.flash, args.flash);
    process.stderr.write('flash saved\n');
  };

  // One power-on: a new chip (RAM, peripherals, clock) around the same flash and the same host wires.
  const powerOn = (flash) => {
    const simulator = new Simulator();
    mcu = simulator.rp2040;
    mcu.logger = new ConsoleLogger(LogLevel.Error);
    mcu.loadBootrom(bootrom);
    if (flash) mcu.flash.set(flash);
    else loadFlash(mcu, args);
    new FlashChip(mcu, () => {
      if (!saveTimer) saveTimer = setTimeout(flushFlash, 100);
    });
    for (const line of lines) line.attach(mcu);
    runner = new Runner(simulator);
    bridge.attach(mcu.usbCtrl, () => runner.wake(), () => process.stderr.write('ready\n'));
    // machine.reset() reboots through the watchdog, which rp2040js leaves to its user
    mcu.peripherals[0x40058].onWatchdogTrigger = () => {
      runner.stop();
      const kept = mcu.flash;
      setImmediate(() => powerOn(kept));
    };
    mcu.core.PC = FLASH_BASE;
    runner.run();
  };

  const stop = () => {
    if (saveTimer) flushFlash();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  powerOn(null);
}

main();
