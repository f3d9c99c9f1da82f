// The fixed array (FAHD/FADB) and extensible array (EAHD/EAIB/EASB/EADB) that index the chunks of a
// dataset with layout message v4 (File Format Specification 3.0, appendix C): elements are chunk
// addresses (with stored size and filter mask when the dataset is filtered), at the chunk's linear index.
// Only the blocks holding the elements asked are read, each checked against its lookup3 checksum.
import { Cursor, NotCovered, once, UNDEFINED, type Meta } from './meta.js';

/** One element of a fixed or extensible array of chunks. */
export interface Element {
  readonly address: number;
  readonly size: number;
  readonly filterMask: number;
}

/** Decodes `count` elements at `c` (unfiltered: an address; filtered: address, size, filter mask). */
function elements(
  meta: Meta,
  c: Cursor,
  count: number,
  elementSize: number,
  filtered: boolean,
  chunkBytes: number,
) {
  const out: (Element | undefined)[] = [];
  const sizeBytes = elementSize - meta.o - 4;
  if (filtered ? sizeBytes < 1 || sizeBytes > 8 : elementSize !== meta.o)
    throw new NotCovered(`chunk index elements of ${elementSize} bytes`);
  for (let i = 0; i < count; i++) {
    const address = c.addr();
    const size = filtered ? c.uint(sizeBytes) : chunkBytes;
    const filterMask = filtered ? c.u32() : 0;
    out.push(address === UNDEFINED ? undefined : { address: meta.base + address, size, filterMask });
  }
  return out;
}

/** Elements with the client ID of a chunk index: 0 unfiltered chunks, 1 filtered chunks. */
function checkClient(id: number, filtered: boolean, what: string) {
  if (id !== (filtered ? 1 : 0)) throw new NotCovered(`${what} of client ${id}`);
}

/** A fixed array (FAHD/FADB): one data block, split in pages of 2^bits elements when larger. */
export class FixedArray {
  private header?: Promise<{
    elementSize: number;
    pageElements: number;
    count: number;
    block: number;
  }>;
  private prefix?: Promise<{
    pages: number;
    init: Uint8Array;
    prefixSize: number;
    whole?: (Element | undefined)[];
  }>;
  private readonly pages = new Map<number, Promise<(Element | undefined)[]>>();

  constructor(
    private readonly meta: Meta,
    private readonly address: number,
    private readonly filtered: boolean,
    private readonly chunkBytes: number,
  ) {}

  private head() {
    return (this.header ??= (async () => {
      const { o, l } = this.meta;
      const c = await this.meta.checked(this.address, 4 + 4 + l + o + 4, 'FAHD', 'fixed array header');
      if (c.u8() !== 0) throw new NotCovered('fixed array header version');
      checkClient(c.u8(), this.filtered, 'a fixed array');
      const elementSize = c.u8();
      const pageBits = c.u8();
      const count = c.len();
      const block = c.addr();
      return { elementSize, pageElements: 2 ** pageBits, count, block };
    })());
  }

  private dataBlock() {
    return (this.prefix ??= (async () => {
      const h = await this.head();
      const { o, base } = this.meta;
      const at = base + h.block;
      if (h.block === UNDEFINED) return { pages: 0, init: new Uint8Array(), prefixSize: 0, whole: [] };
      const paged = h.count > h.pageElements;
      const pages = paged ? Math.ceil(h.count / h.pageElements) : 0;
      const bitmap = paged ? Math.ceil(pages / 8) : 0;
      const head = 4 + 2 + o;
      if (!paged) {
        const c = await this.meta.checked(
          at,
          head + h.count * h.elementSize + 4,
          'FADB',
          'fixed array data block',
        );
        this.blockHead(c);
        return {
          pages,
          init: new Uint8Array(),
          prefixSize: 0,
          whole: elements(this.meta, c, h.count, h.elementSize, this.filtered, this.chunkBytes),
        };
      }
      const c = await this.meta.checked(at, head + bitmap + 4, 'FADB', 'fixed array data block');
      this.blockHead(c);
      const init = c.bytes.slice(c.at, c.at + bitmap);
      return { pages, init, prefixSize: head + bitmap + 4 };
    })());
  }

  private blockHead(c: Cursor) {
    if (c.u8() !== 0) throw new NotCovered('fixed array data block version');
    checkClient(c.u8(), this.filtered, 'a fixed array data block');
    c.addr(); // the header's address
  }

  /** The elements at `indexes` (undefined where no chunk is stored). */
  async get(indexes: readonly number[]): Promise<(Element | undefined)[]> {
    const h = await this.head();
    const b = await this.dataBlock();
    if (b.whole) return indexes.map((i) => (i < h.count ? b.whole?.[i] : undefined));
    const byPage = new Map<number, Promise<(Element | undefined)[]>>();
    for (const i of indexes) {
      const p = Math.floor(i / h.pageElements);
      if (i < h.count && !byPage.has(p)) byPage.set(p, this.page(p));
    }
    const out: (Element | undefined)[] = [];
    for (const i of indexes) {
      const p = byPage.get(Math.floor(i / h.pageElements));
      out.push(p ? (await p)[i % h.pageElements] : undefined);
    }
    return out;
  }

  private page(p: number) {
    return once(this.pages, p, async () => {
      const h = await this.head();
      const b = await this.dataBlock();
      // A page never written holds no chunk.
      if (!(b.init[p >> 3] & (0x80 >> (p & 7)))) return [];
      const full = h.pageElements * h.elementSize + 4;
      const count = Math.min(h.pageElements, h.count - p * h.pageElements);
      const at = this.meta.base + h.block + b.prefixSize + p * full;
      // Pages have no signature: their checksum alone.
      const c = await this.meta.checked(
        at,
        count * h.elementSize + 4,
        '',
        `fixed array data block page ${p}`,
      );
      return elements(this.meta, c, count, h.elementSize, this.filtered, this.chunkBytes);
    });
  }
}

/** An extensible array (EAHD/EAIB/EASB/EADB) of chunk elements. */
export class ExtensibleArray {
  private header?: Promise<{
    elementSize: number;
    indexElements: number;
    minElements: number;
    minPointers: number;
    pageElements: number;
    offsetSize: number;
    superBlocks: { ndblks: number; dblkElements: number; startIndex: number; startBlock: number }[];
    maxIndexSet: number;
    indexBlock: number;
  }>;
  private indexBlock?: Promise<{
    elements: (Element | undefined)[];
    dblks: number[];
    sblks: number[];
    inIndex: number;
  }>;
  private readonly blocks = new Map<number, Promise<(Element | undefined)[]>>();
  private readonly supers = new Map<number, Promise<{ blocks: number[]; pageInit: Uint8Array }>>();
  private readonly pages = new Map<string, Promise<(Element | undefined)[]>>();
  private readonly prefixes = new Map<number, Promise<boolean>>();

  constructor(
    private readonly meta: Meta,
    private readonly address: number,
    private readonly filtered: boolean,
    private readonly chunkBytes: number,
  ) {}

  private head() {
    return (this.header ??= (async () => {
      const { o, l } = this.meta;
      const c = await this.meta.checked(
        this.address,
        4 + 2 + 6 + 6 * l + o + 4,
        'EAHD',
        'extensible array header',
      );
      if (c.u8() !== 0) throw new NotCovered('extensible array header version');
      checkClient(c.u8(), this.filtered, 'an extensible array');
      const elementSize = c.u8();
      const maxBits = c.u8();
      const indexElements = c.u8();
      const minElements = c.u8();
      const minPointers = c.u8();
      const pageBits = c.u8();
      c.len(); // super blocks created
      c.len(); // their size
      c.len(); // data blocks created
      c.len(); // their size
      const maxIndexSet = c.len();
      c.len(); // elements realized
      const indexBlock = c.addr();
      const isPow2 = (x: number) => x > 0 && (x & (x - 1)) === 0;
      if (!isPow2(minElements) || !isPow2(minPointers)) throw new NotCovered('extensible array parameters');
      const count = 1 + maxBits - Math.log2(minElements);
      const superBlocks = [];
      let startIndex = 0;
      let startBlock = 0;
      for (let u = 0; u < count; u++) {
        const ndblks = 2 ** Math.floor(u / 2);
        const dblkElements = 2 ** Math.floor((u + 1) / 2) * minElements;
        superBlocks.push({ ndblks, dblkElements, startIndex, startBlock });
        startIndex += ndblks * dblkElements;
        startBlock += ndblks;
      }
      return {
        elementSize,
        indexElements,
        minElements,
        minPointers,
        pageElements: 2 ** pageBits,
        offsetSize: Math.ceil(maxBits / 8),
        superBlocks,
        maxIndexSet,
        indexBlock,
      };
    })());
  }

  private index() {
    return (this.indexBlock ??= (async () => {
      const h = await this.head();
      const { o, base } = this.meta;
      // Super blocks whose data block addresses are in the index block, then super block addresses.
      const inIndex = 2 * Math.log2(h.minPointers);
      const ndblk = 2 * (h.minPointers - 1);
      const nsblk = h.superBlocks.length - inIndex;
      if (h.indexBlock === UNDEFINED) return { elements: [], dblks: [], sblks: [], inIndex };
      const size = 4 + 2 + o + h.indexElements * h.elementSize + (ndblk + nsblk) * o + 4;
      const c = await this.meta.checked(base + h.indexBlock, size, 'EAIB', 'extensible array index block');
      if (c.u8() !== 0) throw new NotCovered('extensible array index block version');
      checkClient(c.u8(), this.filtered, 'an extensible array index block');
      c.addr();
      const elems = elements(this.meta, c, h.indexElements, h.elementSize, this.filtered, this.chunkBytes);
      const dblks = Array.from({ length: ndblk }, () => c.addr());
      const sblks = Array.from({ length: nsblk }, () => c.addr());
      return { elements: elems, dblks, sblks, inIndex };
    })());
  }

  /** The elements at `indexes` (undefined where no chunk is stored). */
  async get(indexes: readonly number[]): Promise<(Element | undefined)[]> {
    const h = await this.head();
    const ib = await this.index();
    return Promise.all(
      indexes.map(async (idx): Promise<Element | undefined> => {
        if (idx >= h.maxIndexSet) return undefined;
        if (idx < h.indexElements) return ib.elements[idx];
        const e = idx - h.indexElements;
        const s = Math.floor(Math.log2(Math.floor(e / h.minElements) + 1));
        const info = h.superBlocks[s];
        if (!info) return undefined;
        const within = e - info.startIndex;
        const k = Math.floor(within / info.dblkElements);
        const w = within % info.dblkElements;
        if (s < ib.inIndex) {
          const block = ib.dblks[info.startBlock + k];
          if (block === undefined || block === UNDEFINED) return undefined;
          // A data block reached from the index block in pages has no page bitmap to read: not read here.
          if (info.dblkElements > h.pageElements)
            throw new NotCovered('an extensible array data block in pages under its index block');
          return (await this.dataBlock(block, info.dblkElements))[w];
        }
        const sblk = ib.sblks[s - ib.inIndex];
        if (sblk === undefined || sblk === UNDEFINED) return undefined;
        const sb = await this.superBlock(s, sblk);
        const block = sb.blocks[k];
        if (block === undefined || block === UNDEFINED) return undefined;
        if (info.dblkElements <= h.pageElements) return (await this.dataBlock(block, info.dblkElements))[w];
        // Data blocks larger than a page are split in pages, each with its checksum; a page never
        // written (its bit clear in the super block's bitmap for that data block) holds no chunk.
        // The bits of all the super block's data blocks follow one another (data block k, page p: bit
        // k * pages + p), as libhdf5 indexes them.
        const page = Math.floor(w / h.pageElements);
        const bit = k * (info.dblkElements / h.pageElements) + page;
        if (!(sb.pageInit[bit >> 3] & (0x80 >> (bit & 7)))) return undefined;
        return (await this.dataPage(block, page))[w % h.pageElements];
      }),
    );
  }

  private superBlock(s: number, address: number) {
    return once(this.supers, address, async () => {
      const h = await this.head();
      const info = h.superBlocks[s];
      const { o, base } = this.meta;
      // Data blocks larger than a page have bitmaps of their pages written, here.
      const pages = info.dblkElements > h.pageElements ? info.dblkElements / h.pageElements : 0;
      const initSize = Math.ceil(pages / 8);
      const size = 4 + 2 + o + h.offsetSize + info.ndblks * (initSize + o) + 4;
      const c = await this.meta.checked(base + address, size, 'EASB', 'extensible array super block');
      if (c.u8() !== 0) throw new NotCovered('extensible array super block version');
      checkClient(c.u8(), this.filtered, 'an extensible array super block');
      c.addr();
      c.skip(h.offsetSize);
      const pageInit = c.bytes.slice(c.at, c.at + info.ndblks * initSize);
      c.skip(info.ndblks * initSize);
      const blocks = Array.from({ length: info.ndblks }, () => c.addr());
      return { blocks, pageInit };
    });
  }

  /** Page `page` of a data block split in pages (after its prefix: signature to block offset, checksum). */
  private dataPage(address: number, page: number) {
    return once(this.pages, `${address}:${page}`, async () => {
      const h = await this.head();
      const { o, base } = this.meta;
      const prefix = 4 + 2 + o + h.offsetSize + 4;
      // The prefix is checked once per data block (its own checksum).
      await once(this.prefixes, address, async () => {
        const c = await this.meta.checked(base + address, prefix, 'EADB', 'extensible array data block');
        if (c.u8() !== 0) throw new NotCovered('extensible array data block version');
        checkClient(c.u8(), this.filtered, 'an extensible array data block');
        return true;
      });
      const pageSize = h.pageElements * h.elementSize + 4;
      const at = base + address + prefix + page * pageSize;
      const c = await this.meta.checked(at, pageSize, '', `extensible array data block page ${page}`);
      return elements(this.meta, c, h.pageElements, h.elementSize, this.filtered, this.chunkBytes);
    });
  }

  private dataBlock(address: number, count: number) {
    return once(this.blocks, address, async () => {
      const h = await this.head();
      const { o, base } = this.meta;
      const size = 4 + 2 + o + h.offsetSize + count * h.elementSize + 4;
      const c = await this.meta.checked(base + address, size, 'EADB', 'extensible array data block');
      if (c.u8() !== 0) throw new NotCovered('extensible array data block version');
      checkClient(c.u8(), this.filtered, 'an extensible array data block');
      c.addr();
      c.skip(h.offsetSize);
      return elements(this.meta, c, count, h.elementSize, this.filtered, this.chunkBytes);
    });
  }
}
