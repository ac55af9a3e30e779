'use strict';
// The RP2040 boot ROM's BOOTSEL drive (what machine.bootloader() leads to), as a folder on the host.
//
// A real Pico in BOOTSEL mode leaves USB CDC and shows a mass-storage drive, RPI-RP2, whose
// INFO_UF2.TXT names the board. Whatever is written to it is taken 512-byte block by block: only
// well-formed UF2 blocks for the RP2040 family that land in flash are kept, each 4 KB sector a block
// touches is erased first, the rest of the flash (MicroPython's littlefs) is left as it was, and once
// every block of the image has arrived the chip reboots from flash. The folder plays that drive: it is
// made when the chip enters BOOTSEL, looked at every POLL_MS, and removed when the chip reboots.
const fs = require('fs');
const path = require('path');

const FLASH_BASE = 0x10000000;
const FLASH_SIZE = 2 * 1024 * 1024; // the Pico's W25Q16
const SECTOR = 4096;
const BLOCK = 512;
const PAYLOAD = 256; // the boot ROM takes only 256-byte pages
const MAGIC_START0 = 0x0a324655;
const MAGIC_START1 = 0x9e5d5157;
const MAGIC_END = 0x0ab16f30;
const FLAG_NOT_MAIN_FLASH = 0x1;
const FLAG_FAMILY_ID = 0x2000;
const RP2040_FAMILY = 0xe48bff56;
const DRIVE_NAME = 'RPI-RP2';
const POLL_MS = 100;

// The INFO_UF2.TXT the boot ROM serves, read from the ROM itself ("UF2 Bootloader v2.0 ... Board-ID: RPI-RP2").
function driveInfo(bootrom) {
  const start = bootrom.indexOf('UF2 Bootloader');
  const board = bootrom.indexOf('Board-ID:', start);
  if (start < 0 || board < 0) throw new Error('the boot ROM has no UF2 drive (no INFO_UF2.TXT text in it)');
  return bootrom.subarray(start, bootrom.indexOf('\n', board) + 1);
}

// The blocks of `image` the boot ROM would write, and how many of its blocks it would ignore.
function flashBlocks(image) {
  const blocks = [];
  let ignored = 0;
  for (let at = 0; at + BLOCK <= image.length; at += BLOCK) {
    const word = (offset) => image.readUInt32LE(at + offset);
    const [flags, address, size, blockNo, numBlocks, family] = [8, 12, 16, 20, 24, 28].map(word);
    const wellFormed = word(0) === MAGIC_START0 && word(4) === MAGIC_START1 && word(BLOCK - 4) === MAGIC_END;
    const forFlash = !(flags & FLAG_NOT_MAIN_FLASH) && flags & FLAG_FAMILY_ID && family === RP2040_FAMILY &&
      size === PAYLOAD && address % PAYLOAD === 0 && address >= FLASH_BASE &&
      address + PAYLOAD <= FLASH_BASE + FLASH_SIZE && blockNo < numBlocks;
    if (wellFormed && forFlash) {
      blocks.push({ offset: address - FLASH_BASE, payload: image.subarray(at + 32, at + 32 + size), blockNo, numBlocks });
    } else {
      ignored += 1;
    }
  }
  return { blocks, ignored };
}

// The blocks of one whole image (block 0 to numBlocks - 1 of the first image seen), or null while some are missing.
function completeImage(blocks) {
  if (!blocks.length) return null;
  const { numBlocks } = blocks[0];
  const byNumber = new Map();
  for (const block of blocks) if (block.numBlocks === numBlocks) byNumber.set(block.blockNo, block);
  return byNumber.size === numBlocks ? [...byNumber.values()] : null;
}

// Programs `blocks` into `flash` as the boot ROM does: each sector erased before its first page is written.
function writeBlocks(flash, blocks) {
  const erased = new Set();
  for (const { offset, payload } of blocks) {
    const sector = offset - (offset % SECTOR);
    if (!erased.has(sector)) {
      flash.fill(0xff, sector, sector + SECTOR);
      erased.add(sector);
    }
    flash.set(payload, offset);
  }
}

class BootselDrive {
  // `onImage(blocks, file)` is called once with a whole image copied into the drive.
  constructor(folder, info, onImage) {
    this.folder = folder;
    this.info = info;
    this.onImage = onImage;
    this.timer = null;
    this.seen = new Map(); // file name -> the size it had when last looked at
  }

  static beside(flashPath) {
    return path.join(path.dirname(path.resolve(flashPath)), DRIVE_NAME);
  }

  show() {
    this.remove(); // a drive left by a chip that was stopped in BOOTSEL is no part of this one
    fs.mkdirSync(this.folder);
    fs.writeFileSync(path.join(this.folder, 'INFO_UF2.TXT'), this.info);
    this.timer = setInterval(() => this.look(), POLL_MS);
  }

  look() {
    for (const name of fs.readdirSync(this.folder)) {
      if (name === 'INFO_UF2.TXT') continue;
      const file = path.join(this.folder, name);
      let image;
      try {
        image = fs.readFileSync(file);
      } catch {
        continue; // gone again, or not a file
      }
      if (this.seen.get(name) === image.length) continue;
      this.seen.set(name, image.length);
      const blocks = completeImage(flashBlocks(image).blocks);
      if (blocks) {
        this.stop();
        this.onImage(blocks, file);
        return;
      }
    }
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  remove() {
    this.stop();
    fs.rmSync(this.folder, { recursive: true, force: true });
  }
}

module.exports = { BootselDrive, driveInfo, flashBlocks, writeBlocks, FLASH_BASE, FLASH_SIZE };
