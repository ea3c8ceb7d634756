"""What the input size costs: ResNet-34 training and inference time per image, and the size of layer4's grid.

    python bench/size_cost.py [--threads 2]

The MFCC image is 12 x 98; it is squished to (height, width) before the ResNet, which downsamples 32 times, so the
height decides whether layer4 sees more than one row of cells. Writes results/bench_size.json."""
import argparse, json, os, time
import torch, torchvision

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--threads', type=int, default=os.cpu_count()); a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for h,w in [(32,64), (48,96), (32,128), (48,128), (64,128), (64,192), (96,192), (128,256)]:
        torch.manual_seed(0)
        m = torchvision.models.resnet34(num_classes=2); opt = torch.optim.Adam(m.parameters())
        x, y = torch.randn(64, 3, h, w), torch.randint(0, 2, (64,))
        ts = []
        for i in range(4):
            t = time.perf_counter(); loss = torch.nn.functional.cross_entropy(m(x), y)
            opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.perf_counter() - t)
        m.eval()
        with torch.no_grad():
            grid = tuple(torch.nn.Sequential(*list(m.children())[:-2])(x[:1]).shape[-2:])
            ev = []
            for i in range(4): t = time.perf_counter(); m(x); ev.append(time.perf_counter() - t)
        rows.append(dict(size=[h, w], layer4_grid=list(grid), train_ms_per_image=round(min(ts[1:])/64*1000, 1),
                         infer_ms_per_image=round(min(ev[1:])/64*1000, 2)))
        print(rows[-1], flush=True)
    res = dict(threads=a.threads, load_avg_1min=round(os.getloadavg()[0], 2), rows=rows)
    os.makedirs('results', exist_ok=True); json.dump(res, open('results/bench_size.json', 'w'), indent=1)
