'use strict';
// The Pico's QSPI flash (a W25Q16) behind the RP2040's SSI, as the boot ROM's flash routines drive it.
//
// rp2040js serves XIP reads straight from its flash array but ignores SPI commands sent through the
// SSI, so on it MicroPython's littlefs could never erase or program a sector. This model completes
// the chip: bytes written to SSI DR0 are clocked into the flash's command decoder and each answer byte
// lands in the receive FIFO, framed by chip select (IO_QSPI SS output override, as flash_cs_force
// drives it; with the SSI's own chip select, a write after the guest has drained the answers starts a
// new command, as boot2 does). Page program ANDs bytes into the page, erases set bytes to 0xff.
const SSI_SSIENR = 0x08;
const SSI_TXFLR = 0x20;
const SSI_RXFLR = 0x24;
const SSI_SR = 0x28;
const SSI_DR0 = 0x60;
const SR_TFNF = 1 << 1;
const SR_TFE = 1 << 2;
const SR_RFNE = 1 << 3;
const QSPI_SS_CTRL = 0x0c;
const OUTOVER_SHIFT = 8;
const OUTOVER_LOW = 2;
const OUTOVER_HIGH = 3;

const FLASH_SIZE = 2 * 1024 * 1024;
const PAGE = 256;
const JEDEC_ID = [0xef, 0x40, 0x15];
const UNIQUE_ID = [0xe6, 0x60, 0x58, 0x38, 0x83, 0x2b, 0x2c, 0x2e]; // a chip not given its own (harness.js does)
const ERASE_SIZES = { 0x20: 4096, 0x52: 32768, 0xd8: 65536 };

class FlashChip {
  constructor(mcu, onChange, uniqueId = UNIQUE_ID) {
    this.flash = mcu.flash;
    this.uniqueId = uniqueId; // command 4Bh: what pico_get_unique_board_id, machine.unique_id(), reads
    this.onChange = onChange;
    this.rx = [];
    this.command = [];
    this.writeEnabled = false;
    this.forced = null; // null: the SSI drives chip select; true/false: forced low/high
    this.drained = true;
    this.attachSsi(mcu.peripherals[0x18000]);
    this.attachIoQspi(mcu.peripherals[0x40018]);
  }

  attachSsi(ssi) {
    const read = ssi.readUint32.bind(ssi);
    const write = ssi.writeUint32.bind(ssi);
    ssi.readUint32 = (offset) => {
      switch (offset) {
        case SSI_TXFLR:
          return 0;
        case SSI_RXFLR:
          return this.rx.length;
        case SSI_SR:
          return SR_TFE | SR_TFNF | (this.rx.length ? SR_RFNE : 0);
        case SSI_DR0:
          this.drained = this.rx.length <= 1;
          return this.rx.length ? this.rx.shift() : 0;
      }
      return read(offset);
    };
    ssi.writeUint32 = (offset, value) => {
      if (offset === SSI_SSIENR && !(value & 1)) {
        this.rx = []; // disabling the SSI flushes its FIFOs
        this.endCommand();
      }
      if (offset !== SSI_DR0) return write(offset, value);
      if (this.forced === null && this.drained) this.endCommand();
      this.drained = false;
      if (this.forced !== false) this.rx.push(this.clock(value & 0xff));
      else this.rx.push(0xff);
    };
  }

  // IO_QSPI is unimplemented in rp2040js (reads 0xffffffff, which the boot ROM takes as "flash
  // aborted" through SD1's input override): keep its registers, and follow chip select.
  attachIoQspi(ioQspi) {
    const registers = new Map();
    ioQspi.readUint32 = (offset) => registers.get(offset) || 0;
    ioQspi.writeUint32 = (offset, value) => {
      registers.set(offset, value);
      if (offset !== QSPI_SS_CTRL) return;
      const outover = (value >>> OUTOVER_SHIFT) & 3;
      const forced = outover === OUTOVER_LOW ? true : outover === OUTOVER_HIGH ? false : null;
      if (forced !== true || this.forced !== true) this.endCommand();
      this.forced = forced;
    };
  }

  endCommand() {
    const [opcode] = this.command;
    if (opcode in ERASE_SIZES && this.command.length >= 4 && this.writeEnabled) {
      const size = ERASE_SIZES[opcode];
      const start = (this.address() % FLASH_SIZE) & ~(size - 1);
      this.flash.fill(0xff, start, start + size);
      this.changed();
    } else if ((opcode === 0xc7 || opcode === 0x60) && this.writeEnabled) {
      this.flash.fill(0xff, 0, FLASH_SIZE);
      this.changed();
    } else if (opcode === 0x02 && this.command.length > 4) {
      this.changed();
    }
    this.command = [];
  }

  changed() {
    this.writeEnabled = false;
    this.onChange();
  }

  address() {
    return (this.command[1] << 16) | (this.command[2] << 8) | this.command[3];
  }

  // One byte in from the controller, one byte out to it.
  clock(byte) {
    const index = this.command.length;
    this.command.push(byte);
    const opcode = this.command[0];
    switch (opcode) {
      case 0x06:
        this.writeEnabled = true;
        return 0xff;
      case 0x04:
        this.writeEnabled = false;
        return 0xff;
      case 0x05:
        return index ? (this.writeEnabled ? 2 : 0) : 0xff;
      case 0x35:
        return index ? 0x02 : 0xff; // QE already set: boot2 leaves the status register alone
      case 0x9f:
        return index >= 1 && index <= 3 ? JEDEC_ID[index - 1] : 0xff;
      case 0x4b:
        return index >= 5 && index < 13 ? this.uniqueId[index - 5] : 0xff;
      case 0x03:
        return index >= 4 ? this.flash[(this.address() + index - 4) % FLASH_SIZE] : 0xff;
      case 0x0b:
        return index >= 5 ? this.flash[(this.address() + index - 5) % FLASH_SIZE] : 0xff;
      case 0x02:
        if (index >= 4 && this.writeEnabled) {
          const base = this.address() % FLASH_SIZE;
          const page = base & ~(PAGE - 1);
          const at = page + (((base & (PAGE - 1)) + index - 4) % PAGE);
          this.flash[at] &= byte;
        }
        return 0xff;
      default:
        return 0xff;
    }
  }
}

module.exports = { FlashChip };
