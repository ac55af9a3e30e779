'use strict';
// An emulated Raspberry Pi Pico (rp2040js): boot ROM + flash image, USB CDC on stdin/stdout.
//
//   node harness.js --bootrom B1.bin --flash FLASH.img [--uf2 IMAGE.uf2] [--uart0 FD] [--uart1 FD]
//
// --flash is the board's 2 MB flash, persisted: loaded when it exists, else made from --uf2; rewritten
// (shortly after) whenever the guest programs or erases it, so its littlefs survives a restart.
// --uartN FD wires UART N to an inherited stream socket (uart_line.js: bytes in guest time).
// machine.reset() powers a new chip up on the same flash and wires. machine.bootloader() leaves USB CDC
// for the BOOTSEL drive, the folder RPI-RP2 beside the flash image (bootsel_drive.js): a UF2 copied
// there is written into the flash, FLASH.img.firmware then names a copy of it (in flashed/ beside the
// flash), and the chip reboots. Status lines go to stderr ("ready", "flash saved", "bootsel",
// "flashed NAME"); stdout carries only the CDC's bytes.
const fs = require('fs');
const net = require('net');
const path = require('path');
const { Simulator, USBCDC, ConsoleLogger, LogLevel } = require('rp2040js');
const { FlashChip } = require('./flash_chip.js');
const { UartLine } = require('./uart_line.js');
const { BootselDrive, driveInfo, flashBlocks, writeBlocks, FLASH_BASE, FLASH_SIZE } = require('./bootsel_drive.js');

const CYCLE_NANOS = 8; // 125 MHz
const BATCH_CYCLES = 250000; // 2 ms of guest time between looks at the host's I/O
const WATCHDOG = 0x40058;
const WATCHDOG_CTRL = 0x00;
const VECTORED_BOOT_MAGIC = 0xb007c0d3; // watchdog scratch 4: boot into the entry in scratch 7
const BOOTROM_END = 0x4000;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

function loadFlash(mcu, args) {
  if (fs.existsSync(args.flash)) {
    mcu.flash.set(fs.readFileSync(args.flash).subarray(0, FLASH_SIZE));
    return;
  }
  if (!args.uf2) throw new Error('no flash image and no --uf2 to make one from');
  const { blocks, ignored } = flashBlocks(fs.readFileSync(args.uf2));
  if (ignored || !blocks.length) throw new Error(`${args.uf2}: ${ignored} of its blocks are not RP2040 flash blocks`);
  writeBlocks(mcu.flash, blocks);
  saveFlash(mcu.flash, args.flash);
}

// The flash chip's unique ID (8 bytes), the board's silicon identity: made at random the first time and kept
// beside the flash image (FLASH.img.id, hex), as the unix-port boards keep theirs (board.py silicon_id).
function uniqueIdOf(flashPath) {
  const file = `${flashPath}.id`;
  try {
    const id = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex');
    if (id.length === 8) return [...id];
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const made = require('crypto').randomBytes(8);
  fs.writeFileSync(file, `${made.toString('hex')}\n`);
  return [...made];
}

function saveFlash(flash, file) {
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, flash.subarray(0, FLASH_SIZE));
  fs.renameSync(temporary, file);
}

// Keeps a copy of the image flashed through the drive (the drive's file goes with it) and names it in
// the flash's record, so a bench restarted on this flash says what it runs, and can remake it.
function recordFirmware(flashPath, image) {
  const folder = path.join(path.dirname(flashPath), 'flashed');
  fs.rmSync(folder, { recursive: true, force: true });
  fs.mkdirSync(folder);
  const kept = path.join(folder, path.basename(image));
  fs.copyFileSync(image, kept);
  fs.writeFileSync(`${flashPath}.firmware`, `${kept}\n`);
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
      if (!this.usb) return; // no chip on USB (BOOTSEL): what the host sends now is lost, as on a real one
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

  // The chip leaves USB CDC (BOOTSEL): what it had not read yet is lost with it.
  detach() {
    this.usb = null;
    this.waitingRead = null;
    this.pending = [];
    this.pendingBytes = 0;
    this.input.resume();
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
  const romImage = fs.readFileSync(args.bootrom);
  const bootrom = new Uint32Array(new Uint8Array(romImage).buffer);
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
  let powerOn = null;
  const uniqueId = uniqueIdOf(args.flash);
  const drive = new BootselDrive(BootselDrive.beside(args.flash), driveInfo(romImage), (blocks, image) => {
    const flash = mcu.flash;
    writeBlocks(flash, blocks);
    saveFlash(flash, args.flash);
    recordFirmware(args.flash, image);
    drive.remove();
    process.stderr.write(`flashed ${path.basename(image)}\n`);
    powerOn(flash);
  });
  drive.remove(); // a chip powers up running its flash, not in BOOTSEL
  const flushFlash = () => {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = null;
    saveFlash(mcu.flash, args.flash);
    process.stderr.write('flash saved\n');
  };

  // One power-on: a new chip (RAM, peripherals, clock) around the same flash and the same host wires.
  powerOn = (flash) => {
    const simulator = new Simulator();
    mcu = simulator.rp2040;
    mcu.logger = new ConsoleLogger(LogLevel.Error);
    mcu.loadBootrom(bootrom);
    if (flash) mcu.flash.set(flash);
    else loadFlash(mcu, args);
    new FlashChip(mcu, () => {
      if (!saveTimer) saveTimer = setTimeout(flushFlash, 100);
    }, uniqueId);
    for (const line of lines) line.attach(mcu);
    runner = new Runner(simulator);
    bridge.attach(mcu.usbCtrl, () => runner.wake(), () => process.stderr.write('ready\n'));
    // machine.reset() reboots through the watchdog, which rp2040js leaves to its user; the boot ROM's
    // reset_usb_boot (machine.bootloader()) does too, having asked (scratch 4 and 7) to boot into the ROM.
    const watchdog = mcu.peripherals[WATCHDOG];
    let rebooting = false;
    watchdog.onWatchdogTrigger = () => {
      if (rebooting) return;
      rebooting = true;
      // the reset stops the watchdog: rp2040js's would fire again and again within the same tick
      watchdog.writeUint32(WATCHDOG_CTRL, 0);
      runner.stop();
      const [magic, , , entry] = watchdog.scratchData.subarray(4);
      if (magic === VECTORED_BOOT_MAGIC && entry < BOOTROM_END) {
        if (saveTimer) flushFlash();
        bridge.detach();
        drive.show();
        process.stderr.write('bootsel\n');
        return;
      }
      const kept = mcu.flash;
      setImmediate(() => powerOn(kept));
    };
    mcu.core.PC = FLASH_BASE;
    runner.run();
  };

  const stop = () => {
    if (saveTimer) flushFlash();
    drive.remove();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  powerOn(null);
}

main();
