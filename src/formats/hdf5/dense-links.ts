// Links of a group in dense storage (File Format Specification 3.0: the link info message, III.G the
// fractal heap, III.A.2 the version 2 B-tree of type 5): what libhdf5 writes for a group of more than 8
// links with libver >= v108, or any group created with track_order. Each link message is an object of the
// group's fractal heap; the name index (a v2 B-tree of name hashes and heap IDs) lists them. Every block
// read is checked against its lookup3 checksum.
import { BTree2 } from './btree2.js';
import { Cursor, NotCovered, once, UNDEFINED, type Meta } from './meta.js';

/** The raw link messages of a dense group, in the name index's order (hash order). */
export async function denseLinks(meta: Meta, heapAddress: number, nameIndex: number): Promise<Uint8Array[]> {
  if (heapAddress === UNDEFINED || nameIndex === UNDEFINED) return [];
  const heap = await FractalHeap.open(meta, meta.base + heapAddress);
  const ids: Uint8Array[] = [];
  const tree = new BTree2(meta, meta.base + nameIndex, 5, (c, recordSize) =>
    c.bytes.slice(c.at + 4, c.at + recordSize),
  );
  await tree.walk(
    (id) => void ids.push(id),
    () => true,
  );
  return Promise.all(ids.map((id) => heap.object(id)));
}

/** A fractal heap of managed objects (no I/O filters). */
class FractalHeap {
  private readonly blocks = new Map<number, Promise<Uint8Array>>();
  private readonly indirects = new Map<number, Promise<number[]>>();

  private constructor(
    private readonly meta: Meta,
    private readonly h: {
      idLength: number;
      checksummed: boolean;
      width: number;
      startSize: number;
      maxDirectSize: number;
      offsetSize: number;
      lengthSize: number;
      root: number;
      rootRows: number;
    },
  ) {}

  static async open(meta: Meta, address: number): Promise<FractalHeap> {
    const { o, l } = meta;
    // The fixed part of the header (no I/O filter information: filtered heaps are not read here).
    const size = 4 + 1 + 2 + 2 + 1 + 4 + l + o + l + o + 8 * l + 2 + l + l + 2 + 2 + o + 2 + 4;
    const head = await meta.bytes(address, size);
    const filters = new DataView(head.buffer, head.byteOffset + 7, 2).getUint16(0, true);
    if (filters) throw new NotCovered('a fractal heap with I/O filters');
    const c = await meta.checked(address, size, 'FRHP', 'fractal heap header');
    if (c.u8() !== 0) throw new NotCovered('fractal heap version');
    const idLength = c.u16();
    c.u16();
    const flags = c.u8();
    const maxManaged = c.u32();
    c.len(); // next huge object ID
    c.addr(); // huge objects' B-tree
    c.len(); // free space in managed blocks
    c.addr(); // free-space manager
    for (let i = 0; i < 8; i++) c.len(); // managed space, allocated, iterator, counts and sizes
    const width = c.u16();
    const startSize = c.len();
    const maxDirectSize = c.len();
    const maxHeapBits = c.u16();
    c.u16(); // starting rows of the root indirect block
    const root = c.addr();
    const rootRows = c.u16();
    const bytesFor = (bits: number) => Math.ceil(bits / 8);
    const offsetSize = bytesFor(maxHeapBits);
    const lengthSize = Math.min(
      bytesFor(Math.log2(maxDirectSize)),
      Math.floor(Math.floor(Math.log2(maxManaged)) / 8) + 1,
    );
    const pow2 = (x: number) => x > 0 && (x & (x - 1)) === 0;
    if (!pow2(width) || !pow2(startSize) || !pow2(maxDirectSize))
      throw new NotCovered('fractal heap parameters');
    return new FractalHeap(meta, {
      idLength,
      checksummed: (flags & 0x02) !== 0,
      width,
      startSize,
      maxDirectSize,
      offsetSize,
      lengthSize,
      root,
      rootRows,
    });
  }

  /** The bytes of the object a heap ID names. */
  async object(id: Uint8Array): Promise<Uint8Array> {
    const h = this.h;
    if (id.length < 1 + h.offsetSize + h.lengthSize) throw new NotCovered('a fractal heap ID too short');
    if (id[0] & 0xc0) throw new NotCovered('a fractal heap ID version');
    if ((id[0] & 0x30) !== 0) throw new NotCovered('a huge or tiny fractal heap object');
    const c = new Cursor(id, 1, this.meta.o, this.meta.l);
    const offset = c.uint(h.offsetSize);
    const length = c.uint(h.lengthSize);
    const { address, blockOffset, size } = await this.locate(offset);
    const block = await this.direct(address, blockOffset, size);
    const at = offset - blockOffset;
    if (at < 0 || at + length > block.length) throw new NotCovered('a fractal heap object outside its block');
    return block.subarray(at, at + length);
  }

  private rowSize(r: number) {
    return r < 2 ? this.h.startSize : this.h.startSize * 2 ** (r - 1);
  }

  private get directRows() {
    return Math.log2(this.h.maxDirectSize) - Math.log2(this.h.startSize) + 2;
  }

  /** The direct block holding heap offset `offset`: its file address, heap offset and size. */
  private async locate(offset: number): Promise<{ address: number; blockOffset: number; size: number }> {
    const h = this.h;
    if (h.root === UNDEFINED) throw new NotCovered('an empty fractal heap');
    if (h.rootRows === 0) return { address: this.meta.base + h.root, blockOffset: 0, size: h.startSize };
    let address = this.meta.base + h.root;
    let blockOffset = 0;
    let rows = h.rootRows;
    for (let depth = 0; depth < 64; depth++) {
      const entries = await this.indirect(address, blockOffset, rows);
      let start = blockOffset;
      let found = false;
      for (let r = 0; r < rows; r++) {
        const span = this.rowSize(r);
        if (offset >= start + h.width * span) {
          start += h.width * span;
          continue;
        }
        const col = Math.floor((offset - start) / span);
        const child = entries[r * h.width + col];
        if (child === UNDEFINED) throw new NotCovered('a fractal heap block not allocated');
        const childOffset = start + col * span;
        if (r < this.directRows)
          return { address: this.meta.base + child, blockOffset: childOffset, size: span };
        address = this.meta.base + child;
        blockOffset = childOffset;
        rows = r - Math.log2(h.width);
        found = true;
        break;
      }
      if (!found) throw new NotCovered('a fractal heap offset past its blocks');
    }
    throw new NotCovered('fractal heap indirect blocks nested too deep');
  }

  private indirect(address: number, blockOffset: number, rows: number): Promise<number[]> {
    return once(this.indirects, address, async () => {
      const { o } = this.meta;
      const h = this.h;
      const count = rows * h.width;
      const size = 4 + 1 + o + h.offsetSize + count * o + 4;
      const c = await this.meta.checked(address, size, 'FHIB', 'fractal heap indirect block');
      if (c.u8() !== 0) throw new NotCovered('fractal heap indirect block version');
      c.addr();
      if (c.uint(h.offsetSize) !== blockOffset) throw new NotCovered('a fractal heap indirect block offset');
      return Array.from({ length: count }, () => c.addr());
    });
  }

  private direct(address: number, blockOffset: number, size: number): Promise<Uint8Array> {
    return once(this.blocks, address, async () => {
      const { o } = this.meta;
      const h = this.h;
      const block = await this.meta.bytes(address, size);
      if (String.fromCharCode(...block.subarray(0, 4)) !== 'FHDB')
        throw new NotCovered(`fractal heap direct block at byte ${address} has no "FHDB" signature`);
      const c = new Cursor(block, 4, o, this.meta.l);
      if (c.u8() !== 0) throw new NotCovered('fractal heap direct block version');
      c.addr();
      if (c.uint(h.offsetSize) !== blockOffset) throw new NotCovered('a fractal heap direct block offset');
      if (h.checksummed) {
        // The checksum covers the whole block with its own field zeroed.
        const whole = new Uint8Array(block.length + 4);
        whole.set(block);
        whole.fill(0, c.at, c.at + 4);
        whole.set(block.subarray(c.at, c.at + 4), block.length);
        this.meta.verify(whole, block.length, 'fractal heap direct block', address);
      }
      return block;
    });
  }
}
