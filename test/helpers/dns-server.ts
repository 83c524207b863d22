// A DNS server for tests: answers A queries over UDP from a table the test changes at will
// (dns-packet encodes and decodes the messages). Unknown names get NXDOMAIN; `failing` makes
// every answer SERVFAIL (a broken DNS, which must not empty a pool).
import { createSocket, type Socket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

export class TestDnsServer {
  private readonly records = new Map<string, string[]>();
  failing = false;
  /** A queries answered */
  queries = 0;

  private constructor(
    private readonly sock: Socket,
    readonly port: number,
  ) {
    sock.on('message', (msg, rinfo) => {
      let q: dnsPacket.Packet;
      try {
        q = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const questions = q.questions ?? [];
      let rcode: number = RCODE.NOERROR;
      const answers: dnsPacket.Answer[] = [];
      for (const question of questions) {
        this.queries++;
        const ips = this.records.get(question.name.toLowerCase().replace(/\.$/, ''));
        if (this.failing) rcode = RCODE.SERVFAIL;
        else if (ips === undefined) rcode = RCODE.NXDOMAIN;
        else if (question.type === 'A')
          for (const ip of ips) answers.push({ type: 'A', class: 'IN', name: question.name, ttl: 0, data: ip });
      }
      const reply = dnsPacket.encode({
        type: 'response',
        id: q.id ?? 0,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHORITATIVE_ANSWER | rcode,
        questions,
        answers: this.failing ? [] : answers,
      });
      sock.send(reply, rinfo.port, rinfo.address);
    });
  }

  static start(): Promise<TestDnsServer> {
    return new Promise((resolve, reject) => {
      const sock = createSocket('udp4');
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve(new TestDnsServer(sock, sock.address().port)));
    });
  }

  /** the server as discovery.servers takes it */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** NAME now resolves to these addresses (an empty list: the name exists, no A record) */
  set(name: string, ips: string[]): void {
    this.records.set(name.toLowerCase(), [...ips]);
  }

  /** NAME no longer exists (NXDOMAIN) */
  remove(name: string): void {
    this.records.delete(name.toLowerCase());
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}
