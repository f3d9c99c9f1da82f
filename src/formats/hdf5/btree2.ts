// A version 2 B-tree (File Format Specification 3.0, III.A.2): header, internal and leaf nodes, each
// checked against its lookup3 checksum. HDF5 keeps in them the chunks of datasets with more than one
// unlimited dimension (record types 10 and 11) and the names of a dense group's links (type 5).
import { Cursor, limitEncSize, NotCovered, once, UNDEFINED, type Meta } from './meta.js';

/** A version 2 B-tree header and its nodes, read as a walk asks for them. */
export class BTree2<R> {
  private header?: Promise<{
    nodeSize: number;
    recordSize: number;
    depth: number;
    root: number;
    rootCount: number;
  }>;
  private readonly nodes = new Map<
    number,
    Promise<{ records: R[]; children: { address: number; count: number }[] }>
  >();

  constructor(
    private readonly meta: Meta,
    private readonly address: number,
    private readonly type: number,
    private readonly decode: (c: Cursor, recordSize: number) => R,
  ) {}

  private head() {
    return (this.header ??= (async () => {
      const { o, l } = this.meta;
      const c = await this.meta.checked(
        this.address,
        4 + 2 + 4 + 2 + 2 + 2 + o + 2 + l + 4,
        'BTHD',
        'v2 B-tree header',
      );
      if (c.u8() !== 0) throw new NotCovered('v2 B-tree header version');
      const type = c.u8();
      if (type !== this.type) throw new NotCovered(`a v2 B-tree of type ${type}`);
      const nodeSize = c.u32();
      const recordSize = c.u16();
      const depth = c.u16();
      c.skip(2); // split and merge percents
      const root = c.addr();
      const rootCount = c.u16();
      return { nodeSize, recordSize, depth, root, rootCount };
    })());
  }

  /** Maximum records of a node at each depth (0: leaves) and the byte sizes of child record counts. */
  private async geometry() {
    const h = await this.head();
    const prefix = 10; // signature, version, type, checksum
    const maxRecords = [Math.floor((h.nodeSize - prefix) / h.recordSize)];
    const cumulative = [maxRecords[0]];
    const countSize = limitEncSize(maxRecords[0]);
    const totalSize = [0];
    for (let d = 1; d <= h.depth; d++) {
      const pointer = this.meta.o + countSize + (d > 1 ? totalSize[d - 1] : 0);
      const max = Math.floor((h.nodeSize - (prefix + pointer)) / (h.recordSize + pointer));
      maxRecords.push(max);
      cumulative.push((max + 1) * cumulative[d - 1] + max);
      totalSize.push(limitEncSize(cumulative[d]));
    }
    return { h, countSize, totalSize };
  }

  /**
   * Walks the tree in key order: `visit` gets every record of the nodes walked; `enter(left, right)` says
   * whether the child between two records (undefined at the ends) can hold records wanted.
   */
  async walk(
    visit: (r: R) => void,
    enter: (left: R | undefined, right: R | undefined) => boolean,
  ): Promise<void> {
    const g = await this.geometry();
    if (g.h.root === UNDEFINED || g.h.rootCount === 0) return;
    const go = async (address: number, count: number, depth: number): Promise<void> => {
      const node = await this.node(address, count, depth, g);
      for (let i = 0; i <= node.records.length; i++) {
        const child = node.children[i];
        if (child && enter(node.records[i - 1], node.records[i]))
          await go(child.address, child.count, depth - 1);
        if (i < node.records.length) visit(node.records[i]);
      }
    };
    await go(g.h.root, g.h.rootCount, g.h.depth);
  }

  private node(
    address: number,
    count: number,
    depth: number,
    g: { h: { nodeSize: number; recordSize: number }; countSize: number; totalSize: number[] },
  ) {
    return once(this.nodes, address, async () => {
      const { o, base } = this.meta;
      const leaf = depth === 0;
      const pointer = o + g.countSize + (depth > 1 ? g.totalSize[depth - 1] : 0);
      const size = 6 + count * g.h.recordSize + (leaf ? 0 : (count + 1) * pointer) + 4;
      if (size > g.h.nodeSize) throw new NotCovered('a v2 B-tree node larger than its node size');
      const sig = leaf ? 'BTLF' : 'BTIN';
      const c = await this.meta.checked(
        base + address,
        size,
        sig,
        `v2 B-tree ${leaf ? 'leaf' : 'internal'} node`,
      );
      if (c.u8() !== 0) throw new NotCovered('v2 B-tree node version');
      if (c.u8() !== this.type) throw new NotCovered('a v2 B-tree node of another type');
      const records: R[] = [];
      for (let i = 0; i < count; i++) {
        const at = c.at;
        records.push(this.decode(c, g.h.recordSize));
        c.at = at + g.h.recordSize;
      }
      const children: { address: number; count: number }[] = [];
      if (!leaf)
        for (let i = 0; i <= count; i++) {
          const child = c.addr();
          const n = c.uint(g.countSize);
          if (depth > 1) c.skip(g.totalSize[depth - 1]);
          children.push({ address: child, count: n });
        }
      return { records, children };
    });
  }
}
