'use strict';
// A UART of the emulated RP2040 wired to a host stream, with a real PL011's timing in guest time.
//
// rp2040js's UART sends each byte the instant it is written, reports its transmit FIFO always empty
// and raises the transmit interrupt again on every register access, so MicroPython's interrupt
// handler (which clears it, as on a PL011) never returns: `machine.UART(0, ...)` hangs. This completes
// the PL011 as the RP2040 datasheet (4.2) describes it: a 32-byte transmit FIFO (1 without FEN) that
// shifts one character per frame time at the programmed baud rate; the transmit interrupt fires when
// the FIFO drains through its trigger level (UARTIFLS) and stays clear until then; BUSY while
// shifting. Received bytes enter the 32-byte receive FIFO one frame time apart; one that arrives to a
// full FIFO is lost (overrun), as on the chip.
const UARTDR = 0x00;
const UARTFR = 0x18;
const UARTIFLS = 0x34;
const UARTDMACR = 0x48;
const FR_BUSY = 1 << 3;
const FR_RXFE = 1 << 4;
const FR_TXFF = 1 << 5;
const FR_RXFF = 1 << 6;
const FR_TXFE = 1 << 7;
const LCR_PEN = 1 << 1;
const LCR_STP2 = 1 << 3;
const LCR_FEN = 1 << 4;
const TXINTR = 1 << 5;
const FIFO_DEPTH = 32;
const TRIGGER_EIGHTHS = [1, 2, 4, 6, 7]; // UARTIFLS select: 1/8, 1/4, 1/2, 3/4, 7/8 full

class UartLine {
  constructor(index, stream) {
    this.index = index;
    this.stream = stream;
    this.rxQueue = [];
    this.overruns = 0;
    stream.on('data', (chunk) => {
      for (const byte of chunk) this.rxQueue.push(byte);
      if (this.uart && !this.receiving) {
        this.receiving = true; // (a fired ClockAlarm still says scheduled)
        this.rxAlarm.schedule(this.frameNanos());
      }
    });
  }

  // Wires the line to a (newly powered-on) chip's UART, in its reset state.
  attach(mcu) {
    this.uart = mcu.uart[this.index];
    this.clock = mcu.clock;
    this.tx = [];
    this.shifting = false;
    this.shiftByte = 0;
    this.ifls = 0x12; // reset value: both trigger levels at 1/2
    this.dmacr = 0;
    this.txAlarm = this.clock.createAlarm(() => this.shiftDone());
    this.rxAlarm = this.clock.createAlarm(() => this.receiveNext());
    this.receiving = this.rxQueue.length > 0;
    if (this.receiving) this.rxAlarm.schedule(this.frameNanos());
    this.patch();
  }

  patch() {
    const { uart } = this;
    const read = uart.readUint32.bind(uart);
    const write = uart.writeUint32.bind(uart);
    uart.checkInterrupts = () => {
      uart.rp2040.setInterrupt(uart.irq, !!(uart.interruptStatus & uart.interruptMask));
    };
    uart.readUint32 = (offset) => {
      switch (offset) {
        case UARTFR:
          return this.flags();
        case UARTIFLS:
          return this.ifls;
        case UARTDMACR:
          return this.dmacr;
      }
      return read(offset);
    };
    uart.writeUint32 = (offset, value) => {
      switch (offset) {
        case UARTDR:
          this.transmit(value & 0xff);
          return;
        case UARTIFLS:
          this.ifls = value & 0x3f;
          return;
        case UARTDMACR:
          this.dmacr = value & 0x7;
          return;
      }
      write(offset, value);
    };
  }

  depth() {
    return this.uart.lineCtrlRegister & LCR_FEN ? FIFO_DEPTH : 1;
  }

  flags() {
    const { rxFIFO } = this.uart;
    return (
      (this.tx.length >= this.depth() ? FR_TXFF : 0) |
      (this.tx.length === 0 ? FR_TXFE : 0) |
      (this.shifting || this.tx.length ? FR_BUSY : 0) |
      (rxFIFO.itemCount >= this.depth() ? FR_RXFF : 0) |
      (rxFIFO.empty ? FR_RXFE : 0)
    );
  }

  txTrigger() {
    return this.depth() === 1 ? 0 : (FIFO_DEPTH * TRIGGER_EIGHTHS[Math.min(this.ifls & 7, 4)]) / 8;
  }

  frameNanos() {
    const { uart } = this;
    const lcr = uart.lineCtrlRegister;
    const bits = 1 + uart.wordLength + (lcr & LCR_PEN ? 1 : 0) + (lcr & LCR_STP2 ? 2 : 1);
    const baud = uart.baudDivider ? uart.baudRate : 115200;
    return (bits * 1e9) / baud;
  }

  transmit(byte) {
    if (this.tx.length >= this.depth()) return; // written to a full FIFO: lost, as on the chip
    this.tx.push(byte);
    if (this.tx.length > this.txTrigger()) this.uart.interruptStatus &= ~TXINTR;
    if (!this.shifting) this.startShift();
    this.uart.checkInterrupts();
  }

  // The FIFO's oldest byte moves to the shift register; passing the trigger level raises TXINTR.
  startShift() {
    const trigger = this.txTrigger();
    const before = this.tx.length;
    this.shiftByte = this.tx.shift();
    this.shifting = true;
    this.txAlarm.schedule(this.frameNanos());
    if (before > trigger && this.tx.length <= trigger) {
      this.uart.interruptStatus |= TXINTR;
      this.uart.checkInterrupts();
    }
  }

  shiftDone() {
    if (this.uart.enabled && this.uart.txEnabled) this.stream.write(Buffer.of(this.shiftByte));
    if (this.tx.length) this.startShift();
    else this.shifting = false;
  }

  receiveNext() {
    const byte = this.rxQueue.shift();
    const { uart } = this;
    if (uart.enabled && uart.rxEnabled) {
      if (uart.rxFIFO.itemCount >= this.depth()) this.overruns++;
      else uart.feedByte(byte);
    }
    if (this.rxQueue.length) this.rxAlarm.schedule(this.frameNanos());
    else this.receiving = false;
  }
}

module.exports = { UartLine };
