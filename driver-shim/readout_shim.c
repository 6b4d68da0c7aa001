// SPDX-License-Identifier: GPL-2.0
/*
 * readout_shim: the thin PCI driver of readoutd, the readout server for PCIe
 * FPGA readout cards. It only gives user space what it cannot get otherwise;
 * the ABI is in uapi/readout_shim.h.
 *
 * Each bound function gets a misc device, /dev/readout/DDDD:BB:DD.F. Anyone
 * who can open it reads the information and maps the memory BARs (uncached).
 * One file at a time owns the DMA side: the DMA mask, coherent DMA buffers
 * mapped into user space, eventfds signalled by the interrupt vectors, and
 * bus mastering. When that file is released, bus mastering goes off before
 * anything the device could still write to is freed.
 *
 * Lifetimes: the per-device state is reference counted (one reference for
 * the binding, one per open file) and outlives the binding: after removal
 * the ioctls and mmap fail with ENODEV, the BAR mappings are revoked (a
 * later access gets SIGBUS), and the owner's DMA buffers are freed when its
 * file is released, which happens only once all its mappings are gone.
 *
 * Locking: rdev->lock (a mutex) guards ownership, the buffer list, the DMA
 * mask and bus mastering; it is taken under mmap_lock (mmap), so nothing
 * copies from or to user space while holding it. rdev->bar_sem orders BAR
 * faults against removal. Each vector's spinlock guards its eventfd, which
 * the interrupt handler signals, and, for INTx, the mask state.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/dma-mapping.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/pid.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "readout_shim.h"

#define RSHIM_MAX_VECTORS	32
#define RSHIM_MAX_CHUNK		SZ_4M
#define RSHIM_MAX_CHUNKS	65536
#define RSHIM_MAX_BUF_ID	0xffff
/* mmap offsets: bits 40 and up select a BAR or a DMA buffer, see the uapi. */
#define RSHIM_MMAP_SHIFT	40
#define RSHIM_MMAP_WITHIN	(BIT_ULL(RSHIM_MMAP_SHIFT) - 1)
#define RSHIM_MMAP_DMA_INDEX	(RSHIM_MMAP_DMA >> RSHIM_MMAP_SHIFT)

static char *ids;
module_param(ids, charp, 0444);
MODULE_PARM_DESC(ids, "PCI ids to bind, \"vvvv:dddd[,vvvv:dddd...]\" in hex (default: none; new_id works too)");

static char *irq_mode = "auto";
module_param(irq_mode, charp, 0444);
MODULE_PARM_DESC(irq_mode, "interrupt kind: auto (MSI-X, then MSI, then INTx), msix, msi or intx");

struct rshim_dev;

struct rshim_irq {
	struct rshim_dev *rdev;
	spinlock_t lock;		/* trigger; rdev->intx_masked for INTx */
	struct eventfd_ctx *trigger;
	int irq;
	bool requested;
};

struct rshim_chunk {
	void *cpu;
	dma_addr_t bus;
};

struct rshim_buf {
	struct list_head node;
	u32 id;
	u32 nchunks;
	u64 chunk_size;
	atomic_t maps;			/* user mappings (vmas) of its chunks */
	struct rshim_chunk chunks[];
};

struct rshim_dev {
	struct kref kref;		/* the binding's, and one per open file */
	struct pci_dev *pdev;		/* referenced until the last put */
	struct miscdevice misc;
	char name[40];
	char nodename[40];

	struct mutex lock;		/* the fields down to inode */
	bool gone;			/* removed; also under bar_sem */
	struct file *owner;
	struct pid *owner_pid;
	char owner_comm[TASK_COMM_LEN];
	bool master;
	u32 dma_mask_bits;
	u32 default_mask_bits;
	struct list_head bufs;
	struct ida buf_ida;
	/* Every file's f_mapping: BAR mappings are revoked from it at removal. */
	struct inode *inode;

	struct rw_semaphore bar_sem;

	u32 irq_type;
	u32 nvec;
	bool intx_masked;
	struct rshim_irq *irqs;
};

static struct pci_driver rshim_driver;

/* The PCI_IRQ_* kinds irq_mode allows, or 0 for a bad value. */
static unsigned int rshim_irq_kinds(void)
{
	if (!strcmp(irq_mode, "auto"))
		return PCI_IRQ_ALL_TYPES;
	if (!strcmp(irq_mode, "msix"))
		return PCI_IRQ_MSIX;
	if (!strcmp(irq_mode, "msi"))
		return PCI_IRQ_MSI;
	if (!strcmp(irq_mode, "intx"))
		return PCI_IRQ_LEGACY;
	return 0;
}

static void rshim_free(struct kref *kref)
{
	struct rshim_dev *rdev = container_of(kref, struct rshim_dev, kref);

	if (rdev->inode)
		iput(rdev->inode);
	ida_destroy(&rdev->buf_ida);
	kfree(rdev->irqs);
	pci_dev_put(rdev->pdev);
	mutex_destroy(&rdev->lock);
	kfree(rdev);
}

/* Interrupts */

static irqreturn_t rshim_irq_handler(int irq, void *arg)
{
	struct rshim_irq *ri = arg;
	struct rshim_dev *rdev = ri->rdev;
	irqreturn_t ret = IRQ_HANDLED;

	spin_lock(&ri->lock);
	if (rdev->irq_type == RSHIM_IRQ_INTX) {
		/* A shared line: ours only if the device asserts it. */
		if (rdev->intx_masked || !pci_check_and_mask_intx(rdev->pdev)) {
			ret = IRQ_NONE;
			goto out;
		}
		rdev->intx_masked = true;
	}
	if (ri->trigger)
		eventfd_signal(ri->trigger, 1);
out:
	spin_unlock(&ri->lock);
	return ret;
}

/* Unmasks INTx, or, should the device still assert it, signals again. */
static void rshim_intx_unmask(struct rshim_dev *rdev)
{
	struct rshim_irq *ri = &rdev->irqs[0];
	unsigned long flags;

	spin_lock_irqsave(&ri->lock, flags);
	if (rdev->intx_masked) {
		if (pci_check_and_unmask_intx(rdev->pdev))
			rdev->intx_masked = false;
		else if (ri->trigger)
			eventfd_signal(ri->trigger, 1);
	}
	spin_unlock_irqrestore(&ri->lock, flags);
}

/* Installs trigger (NULL: none) on a vector, dropping the old one. */
static void rshim_set_trigger(struct rshim_irq *ri, struct eventfd_ctx *trigger)
{
	struct eventfd_ctx *old;
	unsigned long flags;

	spin_lock_irqsave(&ri->lock, flags);
	old = ri->trigger;
	ri->trigger = trigger;
	spin_unlock_irqrestore(&ri->lock, flags);
	/* The handler signals under the lock: nobody uses old any more. */
	if (old)
		eventfd_ctx_put(old);
}

static void rshim_unbind_eventfds(struct rshim_dev *rdev)
{
	u32 i;

	for (i = 0; i < rdev->nvec; i++)
		rshim_set_trigger(&rdev->irqs[i], NULL);
}

/*
 * The handlers' contexts live in rdev, which outlives the binding: they are
 * freed here, explicitly, at removal and on a failed probe, not whenever
 * devres gets to them.
 */
static void rshim_free_irqs(struct rshim_dev *rdev)
{
	u32 i;

	for (i = 0; i < rdev->nvec; i++) {
		if (rdev->irqs[i].requested)
			devm_free_irq(&rdev->pdev->dev, rdev->irqs[i].irq, &rdev->irqs[i]);
		rdev->irqs[i].requested = false;
	}
}

static int rshim_setup_irqs(struct rshim_dev *rdev)
{
	struct pci_dev *pdev = rdev->pdev;
	unsigned int kinds = rshim_irq_kinds();
	bool forced = kinds != PCI_IRQ_ALL_TYPES;
	int max = 1, n, ret;
	u32 i;

	if (kinds & PCI_IRQ_MSIX)
		max = max(max, pci_msix_vec_count(pdev));
	if (kinds & PCI_IRQ_MSI)
		max = max(max, pci_msi_vec_count(pdev));
	max = min(max, RSHIM_MAX_VECTORS);

	n = pci_alloc_irq_vectors(pdev, 1, max, kinds);
	if (n < 0) {
		if (forced) {
			dev_err(&pdev->dev, "irq_mode=%s: the device has no such interrupt (%d)\n",
				irq_mode, n);
			return n;
		}
		dev_info(&pdev->dev, "no usable interrupt: user space will have to poll\n");
		return 0;
	}
	if (pdev->msix_enabled) {
		rdev->irq_type = RSHIM_IRQ_MSIX;
	} else if (pdev->msi_enabled) {
		rdev->irq_type = RSHIM_IRQ_MSI;
	} else if (pci_intx_mask_supported(pdev)) {
		rdev->irq_type = RSHIM_IRQ_INTX;
	} else {
		pci_free_irq_vectors(pdev);
		dev_err(&pdev->dev, "INTx cannot be masked on this device: no interrupts\n");
		return forced ? -ENODEV : 0;
	}

	rdev->irqs = kcalloc(n, sizeof(*rdev->irqs), GFP_KERNEL);
	if (!rdev->irqs)
		return -ENOMEM;
	rdev->nvec = n;
	for (i = 0; i < rdev->nvec; i++) {
		struct rshim_irq *ri = &rdev->irqs[i];
		const char *name;

		ri->rdev = rdev;
		spin_lock_init(&ri->lock);
		ri->irq = pci_irq_vector(pdev, i);
		name = devm_kasprintf(&pdev->dev, GFP_KERNEL, "%s[%s]:%u",
				      KBUILD_MODNAME, pci_name(pdev), i);
		if (!name)
			return -ENOMEM;
		ret = devm_request_irq(&pdev->dev, ri->irq, rshim_irq_handler,
				       rdev->irq_type == RSHIM_IRQ_INTX ? IRQF_SHARED : 0,
				       name, ri);
		if (ret) {
			dev_err(&pdev->dev, "cannot request irq %d (vector %u): %d\n",
				ri->irq, i, ret);
			return ret;
		}
		ri->requested = true;
	}
	return 0;
}

/* DMA buffers */

static void rshim_buf_free(struct rshim_dev *rdev, struct rshim_buf *buf)
{
	u32 i;

	for (i = 0; i < buf->nchunks; i++)
		dma_free_coherent(&rdev->pdev->dev, buf->chunk_size,
				  buf->chunks[i].cpu, buf->chunks[i].bus);
	list_del(&buf->node);
	ida_free(&rdev->buf_ida, buf->id);
	kvfree(buf);
}

static struct rshim_buf *rshim_buf_find(struct rshim_dev *rdev, u32 id)
{
	struct rshim_buf *buf;

	list_for_each_entry(buf, &rdev->bufs, node)
		if (buf->id == id)
			return buf;
	return NULL;
}

#define RSHIM_RELEASED \
	"DMA side released by pid %d (%s): bus mastering switched off, %u DMA buffers (%llu bytes) freed\n"

/*
 * The owner's file goes: bus mastering off first, so that the device cannot
 * write any more, then the interrupts, and only then the memory.
 */
static void rshim_drop_owner(struct rshim_dev *rdev)
{
	struct rshim_buf *buf, *tmp;
	u64 bytes = 0;
	u32 n = 0, i;

	lockdep_assert_held(&rdev->lock);
	if (!rdev->gone) {
		pci_clear_master(rdev->pdev);
		for (i = 0; i < rdev->nvec; i++)
			synchronize_irq(rdev->irqs[i].irq);
	}
	rdev->master = false;
	rshim_unbind_eventfds(rdev);
	list_for_each_entry_safe(buf, tmp, &rdev->bufs, node) {
		n++;
		bytes += buf->chunk_size * buf->nchunks;
		rshim_buf_free(rdev, buf);
	}
	if (!rdev->gone && rdev->dma_mask_bits != rdev->default_mask_bits &&
	    !dma_set_mask_and_coherent(&rdev->pdev->dev, DMA_BIT_MASK(rdev->default_mask_bits)))
		rdev->dma_mask_bits = rdev->default_mask_bits;
	/* Unbound, dev_info() would name the bus instead of this driver. */
	if (rdev->gone)
		pr_info("%s: " RSHIM_RELEASED, pci_name(rdev->pdev), pid_nr(rdev->owner_pid),
			rdev->owner_comm, n, bytes);
	else
		dev_info(&rdev->pdev->dev, RSHIM_RELEASED, pid_nr(rdev->owner_pid),
			 rdev->owner_comm, n, bytes);
	put_pid(rdev->owner_pid);
	rdev->owner_pid = NULL;
	rdev->owner = NULL;
}

/* File operations */

static int rshim_open(struct inode *inode, struct file *file)
{
	/*
	 * misc_open() holds misc_mtx around this, and remove() deregisters the
	 * misc device before it drops its reference: rdev is alive here.
	 */
	struct rshim_dev *rdev = container_of(file->private_data, struct rshim_dev, misc);

	kref_get(&rdev->kref);
	file->private_data = rdev;
	mutex_lock(&rdev->lock);
	if (!rdev->inode) {
		ihold(inode);
		rdev->inode = inode;
	}
	file->f_mapping = rdev->inode->i_mapping;
	mutex_unlock(&rdev->lock);
	return nonseekable_open(inode, file);
}

static int rshim_release(struct inode *inode, struct file *file)
{
	struct rshim_dev *rdev = file->private_data;

	mutex_lock(&rdev->lock);
	if (rdev->owner == file)
		rshim_drop_owner(rdev);
	mutex_unlock(&rdev->lock);
	kref_put(&rdev->kref, rshim_free);
	return 0;
}

static long rshim_ioc_info(struct rshim_dev *rdev, void __user *arg)
{
	struct pci_dev *pdev = rdev->pdev;
	struct rshim_info info;
	u16 lnksta = 0;
	int i;

	memset(&info, 0, sizeof(info));
	mutex_lock(&rdev->lock);
	info.owner_pid = rdev->owner_pid ? pid_vnr(rdev->owner_pid) : 0;
	info.dma_mask_bits = rdev->dma_mask_bits;
	mutex_unlock(&rdev->lock);

	info.abi_version = RSHIM_ABI_VERSION;
	info.domain = pci_domain_nr(pdev->bus);
	info.bus = pdev->bus->number;
	info.slot = PCI_SLOT(pdev->devfn);
	info.function = PCI_FUNC(pdev->devfn);
	info.revision = pdev->revision;
	info.vendor = pdev->vendor;
	info.device = pdev->device;
	info.subsystem_vendor = pdev->subsystem_vendor;
	info.subsystem_device = pdev->subsystem_device;
	info.class_code = pdev->class;
	info.numa_node = dev_to_node(&pdev->dev);
	info.irq_type = rdev->irq_type;
	info.irq_vectors = rdev->nvec;
	if (pci_is_pcie(pdev) && !pcie_capability_read_word(pdev, PCI_EXP_LNKSTA, &lnksta)) {
		/* PCI_EXP_LNKSTA_CLS_2_5GB (1) to PCI_EXP_LNKSTA_CLS_64_0GB (6) */
		static const u32 mts[] = { 0, 2500, 5000, 8000, 16000, 32000, 64000 };
		unsigned int cls = lnksta & PCI_EXP_LNKSTA_CLS;

		info.link_speed = cls < ARRAY_SIZE(mts) ? mts[cls] : 0;
		info.link_width = (lnksta & PCI_EXP_LNKSTA_NLW) >> PCI_EXP_LNKSTA_NLW_SHIFT;
	}
	for (i = 0; i < RSHIM_MAX_BARS; i++) {
		unsigned long flags = pci_resource_flags(pdev, i);

		info.bar[i].size = pci_resource_len(pdev, i);
		if (!info.bar[i].size)
			continue;
		if (flags & IORESOURCE_MEM)
			info.bar[i].flags |= RSHIM_BAR_MEM;
		if (flags & IORESOURCE_IO)
			info.bar[i].flags |= RSHIM_BAR_IO;
		if (flags & IORESOURCE_MEM_64)
			info.bar[i].flags |= RSHIM_BAR_64;
		if (flags & IORESOURCE_PREFETCH)
			info.bar[i].flags |= RSHIM_BAR_PREFETCH;
	}
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long rshim_ioc_claim(struct rshim_dev *rdev, struct file *file)
{
	long ret = 0;

	mutex_lock(&rdev->lock);
	if (rdev->owner && rdev->owner != file) {
		ret = -EBUSY;
	} else if (!rdev->owner) {
		rdev->owner = file;
		rdev->owner_pid = get_pid(task_tgid(current));
		get_task_comm(rdev->owner_comm, current);
		dev_info(&rdev->pdev->dev, "DMA side claimed by pid %d (%s)\n",
			 task_tgid_nr(current), rdev->owner_comm);
	}
	mutex_unlock(&rdev->lock);
	return ret;
}

/* Takes rdev->lock for the owner's ioctls: returns 0 with it held, or why not. */
static int rshim_lock_owner(struct rshim_dev *rdev, struct file *file)
{
	mutex_lock(&rdev->lock);
	if (rdev->gone) {
		mutex_unlock(&rdev->lock);
		return -ENODEV;
	}
	if (rdev->owner != file) {
		mutex_unlock(&rdev->lock);
		return -EPERM;
	}
	return 0;
}

static long rshim_ioc_set_dma_mask(struct rshim_dev *rdev, struct file *file, u32 __user *arg)
{
	struct device *dev = &rdev->pdev->dev;
	u32 bits;
	long ret;

	if (get_user(bits, arg))
		return -EFAULT;
	ret = rshim_lock_owner(rdev, file);
	if (ret)
		return ret;
	if (bits < 24 || bits > 64) {
		ret = -EINVAL;
	} else if (!list_empty(&rdev->bufs)) {
		dev_err_ratelimited(dev, "DMA mask: cannot change it while DMA buffers exist\n");
		ret = -EBUSY;
	} else {
		ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(bits));
		if (ret) {
			dev_err(dev, "DMA mask: the platform cannot do %u bits (%ld)\n", bits, ret);
			/* The old one worked before: put it back. */
			dma_set_mask_and_coherent(dev, DMA_BIT_MASK(rdev->dma_mask_bits));
		} else {
			rdev->dma_mask_bits = bits;
		}
	}
	mutex_unlock(&rdev->lock);
	return ret;
}

static long rshim_ioc_dma_alloc(struct rshim_dev *rdev, struct file *file,
				struct rshim_dma_alloc __user *arg)
{
	struct device *dev = &rdev->pdev->dev;
	struct rshim_dma_chunk *out = NULL;
	struct rshim_buf *buf = NULL;
	struct rshim_dma_alloc req;
	u64 n, base;
	long ret;
	u32 i;
	int id;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!req.chunk_size || !PAGE_ALIGNED(req.chunk_size) || req.chunk_size > RSHIM_MAX_CHUNK) {
		dev_err_ratelimited(dev, "DMA alloc: chunk size %llu is not a multiple of %lu up to %u\n",
				    req.chunk_size, PAGE_SIZE, RSHIM_MAX_CHUNK);
		return -EINVAL;
	}
	n = div64_u64(req.size, req.chunk_size);
	if (!req.size || n * req.chunk_size != req.size || n > RSHIM_MAX_CHUNKS ||
	    n > req.max_chunks) {
		dev_err_ratelimited(dev, "DMA alloc: size %llu is not 1 to %u chunks of %llu, or max_chunks %u is too few\n",
				    req.size, RSHIM_MAX_CHUNKS, req.chunk_size, req.max_chunks);
		return -EINVAL;
	}
	out = kvcalloc(n, sizeof(*out), GFP_KERNEL);
	buf = kvzalloc(struct_size(buf, chunks, n), GFP_KERNEL);
	if (!out || !buf) {
		ret = -ENOMEM;
		goto out_free;
	}

	ret = rshim_lock_owner(rdev, file);
	if (ret)
		goto out_free;
	id = ida_alloc_range(&rdev->buf_ida, 1, RSHIM_MAX_BUF_ID, GFP_KERNEL);
	if (id < 0) {
		dev_err(dev, "DMA alloc: no buffer id left (%d)\n", id);
		ret = id;
		goto out_unlock;
	}
	buf->id = id;
	buf->chunk_size = req.chunk_size;
	atomic_set(&buf->maps, 0);
	base = RSHIM_MMAP_DMA + ((u64)id << RSHIM_MMAP_SHIFT);
	for (i = 0; i < n; i++) {
		struct rshim_chunk *c = &buf->chunks[i];

		/* Zeroed: dma_alloc_coherent() always clears the memory. */
		c->cpu = dma_alloc_coherent(dev, req.chunk_size, &c->bus,
					    GFP_KERNEL | __GFP_NOWARN);
		if (!c->cpu) {
			dev_err(dev, "DMA alloc: chunk %u of %llu (%llu bytes, %u-bit mask) failed\n",
				i + 1, n, req.chunk_size, rdev->dma_mask_bits);
			ret = -ENOMEM;
			break;
		}
		buf->nchunks = i + 1;
		out[i].offset = (u64)i * req.chunk_size;
		out[i].len = req.chunk_size;
		out[i].bus = c->bus;
		out[i].mmap_offset = base + out[i].offset;
	}
	list_add_tail(&buf->node, &rdev->bufs);
	if (ret) {
		rshim_buf_free(rdev, buf);
		buf = NULL;
		goto out_unlock;
	}
	dev_dbg(dev, "DMA buffer %u: %llu chunks of %llu bytes\n", buf->id, n, req.chunk_size);
	mutex_unlock(&rdev->lock);

	/* Copied out without the lock, which mmap takes under mmap_lock. */
	req.id = id;
	if (copy_to_user(u64_to_user_ptr(req.chunks), out, n * sizeof(*out)) ||
	    copy_to_user(arg, &req, sizeof(req))) {
		mutex_lock(&rdev->lock);
		buf = rshim_buf_find(rdev, id);
		if (buf && !atomic_read(&buf->maps))
			rshim_buf_free(rdev, buf);
		mutex_unlock(&rdev->lock);
		kvfree(out);
		return -EFAULT;
	}
	kvfree(out);
	return 0;

out_unlock:
	mutex_unlock(&rdev->lock);
out_free:
	kvfree(buf);
	kvfree(out);
	return ret;
}

static long rshim_ioc_dma_free(struct rshim_dev *rdev, struct file *file, u32 __user *arg)
{
	struct device *dev = &rdev->pdev->dev;
	struct rshim_buf *buf;
	long ret;
	u32 id;

	if (get_user(id, arg))
		return -EFAULT;
	ret = rshim_lock_owner(rdev, file);
	if (ret)
		return ret;
	buf = rshim_buf_find(rdev, id);
	if (!buf) {
		ret = -EINVAL;
	} else if (rdev->master) {
		dev_err_ratelimited(dev, "DMA free: buffer %u: bus mastering is on, switch it off first\n",
				    id);
		ret = -EBUSY;
	} else if (atomic_read(&buf->maps)) {
		dev_err_ratelimited(dev, "DMA free: buffer %u is still mapped (%d mappings)\n",
				    id, atomic_read(&buf->maps));
		ret = -EBUSY;
	} else {
		rshim_buf_free(rdev, buf);
	}
	mutex_unlock(&rdev->lock);
	return ret;
}

static long rshim_ioc_irq_eventfd(struct rshim_dev *rdev, struct file *file,
				  struct rshim_irq_eventfd __user *arg)
{
	struct eventfd_ctx *trigger = NULL;
	struct rshim_irq_eventfd req;
	long ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.fd < -1)
		return -EINVAL;
	if (req.fd >= 0) {
		trigger = eventfd_ctx_fdget(req.fd);
		if (IS_ERR(trigger))
			return PTR_ERR(trigger);
	}
	ret = rshim_lock_owner(rdev, file);
	if (ret)
		goto out_put;
	if (req.vector >= rdev->nvec) {
		mutex_unlock(&rdev->lock);
		ret = -EINVAL;
		goto out_put;
	}
	rshim_set_trigger(&rdev->irqs[req.vector], trigger);
	/* A level interrupt masked before this binding is delivered now. */
	if (trigger && rdev->irq_type == RSHIM_IRQ_INTX)
		rshim_intx_unmask(rdev);
	mutex_unlock(&rdev->lock);
	return 0;

out_put:
	if (trigger)
		eventfd_ctx_put(trigger);
	return ret;
}

static long rshim_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct rshim_dev *rdev = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;
	u32 on;

	if (READ_ONCE(rdev->gone))
		return -ENODEV;

	switch (cmd) {
	case RSHIM_IOC_INFO:
		return rshim_ioc_info(rdev, uarg);
	case RSHIM_IOC_CLAIM:
		return rshim_ioc_claim(rdev, file);
	case RSHIM_IOC_SET_DMA_MASK:
		return rshim_ioc_set_dma_mask(rdev, file, uarg);
	case RSHIM_IOC_DMA_ALLOC:
		return rshim_ioc_dma_alloc(rdev, file, uarg);
	case RSHIM_IOC_DMA_FREE:
		return rshim_ioc_dma_free(rdev, file, uarg);
	case RSHIM_IOC_IRQ_EVENTFD:
		return rshim_ioc_irq_eventfd(rdev, file, uarg);
	case RSHIM_IOC_IRQ_UNMASK:
		ret = rshim_lock_owner(rdev, file);
		if (ret)
			return ret;
		if (rdev->irq_type == RSHIM_IRQ_INTX)
			rshim_intx_unmask(rdev);
		else
			ret = -EINVAL;
		mutex_unlock(&rdev->lock);
		return ret;
	case RSHIM_IOC_BUS_MASTER:
		if (get_user(on, (u32 __user *)uarg))
			return -EFAULT;
		if (on > 1)
			return -EINVAL;
		ret = rshim_lock_owner(rdev, file);
		if (ret)
			return ret;
		if (on)
			pci_set_master(rdev->pdev);
		else
			pci_clear_master(rdev->pdev);
		rdev->master = on;
		mutex_unlock(&rdev->lock);
		return 0;
	}
	return -ENOTTY;
}

/* mmap */

static vm_fault_t rshim_bar_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct rshim_dev *rdev = vma->vm_private_data;
	pgoff_t pgoff = vma->vm_pgoff + ((vmf->address - vma->vm_start) >> PAGE_SHIFT);
	u64 off = (u64)pgoff << PAGE_SHIFT;
	unsigned int bar = off >> RSHIM_MMAP_SHIFT;
	u64 within = off & RSHIM_MMAP_WITHIN;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	/* Removal zaps the mappings under the write side: none comes back. */
	down_read(&rdev->bar_sem);
	if (!rdev->gone && bar < PCI_STD_NUM_BARS && within < pci_resource_len(rdev->pdev, bar))
		ret = vmf_insert_pfn(vma, vmf->address,
				     (pci_resource_start(rdev->pdev, bar) + within) >> PAGE_SHIFT);
	up_read(&rdev->bar_sem);
	return ret;
}

static const struct vm_operations_struct rshim_bar_vm_ops = {
	.fault = rshim_bar_fault,
};

static int rshim_mmap_bar(struct rshim_dev *rdev, struct vm_area_struct *vma,
			  unsigned int bar, u64 off)
{
	struct pci_dev *pdev = rdev->pdev;
	resource_size_t start = pci_resource_start(pdev, bar);
	resource_size_t size = pci_resource_len(pdev, bar);
	u64 len = vma->vm_end - vma->vm_start;
	int ret = -EINVAL;

	down_read(&rdev->bar_sem);
	if (rdev->gone) {
		ret = -ENODEV;
	} else if (!size) {
		dev_err_ratelimited(&pdev->dev, "mmap: there is no BAR %u\n", bar);
	} else if (!(pci_resource_flags(pdev, bar) & IORESOURCE_MEM)) {
		dev_err_ratelimited(&pdev->dev, "mmap: BAR %u is an I/O port BAR\n", bar);
	} else if (!PAGE_ALIGNED(start) || size < PAGE_SIZE) {
		dev_err_ratelimited(&pdev->dev, "mmap: BAR %u (%pa, %pa bytes) is not whole pages\n",
				    bar, &start, &size);
	} else if (off >= size || len > size - off) {
		dev_err_ratelimited(&pdev->dev, "mmap: %llu bytes at %#llx run past BAR %u (%pa bytes)\n",
				    len, off, bar, &size);
	} else {
		vma->vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
		vma->vm_ops = &rshim_bar_vm_ops;
		vma->vm_private_data = rdev;
		ret = 0;
	}
	up_read(&rdev->bar_sem);
	return ret;
}

static void rshim_dma_vm_open(struct vm_area_struct *vma)
{
	struct rshim_buf *buf = vma->vm_private_data;

	atomic_inc(&buf->maps);
}

static void rshim_dma_vm_close(struct vm_area_struct *vma)
{
	struct rshim_buf *buf = vma->vm_private_data;

	atomic_dec(&buf->maps);
}

/* The close hook also keeps these vmas from being merged. */
static const struct vm_operations_struct rshim_dma_vm_ops = {
	.open = rshim_dma_vm_open,
	.close = rshim_dma_vm_close,
};

static int rshim_mmap_dma(struct rshim_dev *rdev, struct file *file,
			  struct vm_area_struct *vma, u32 id, u64 off)
{
	struct device *dev = &rdev->pdev->dev;
	u64 len = vma->vm_end - vma->vm_start;
	struct rshim_chunk *chunk;
	struct rshim_buf *buf;
	unsigned long pgoff;
	u64 idx, in;
	int ret;

	ret = rshim_lock_owner(rdev, file);
	if (ret)
		return ret;
	buf = rshim_buf_find(rdev, id);
	if (!buf) {
		ret = -EINVAL;
		goto out;
	}
	idx = div64_u64_rem(off, buf->chunk_size, &in);
	if (idx >= buf->nchunks || len > buf->chunk_size - in) {
		dev_err_ratelimited(dev, "mmap: %llu bytes at %#llx of buffer %u are not within one chunk\n",
				    len, off, id);
		ret = -EINVAL;
		goto out;
	}
	chunk = &buf->chunks[idx];
	/*
	 * dma_mmap_coherent() takes vm_pgoff as the offset into the chunk;
	 * the file offset goes back once the pages are in (a shared mapping,
	 * so remap_pfn_range() keeps vm_pgoff).
	 */
	pgoff = vma->vm_pgoff;
	vma->vm_pgoff = in >> PAGE_SHIFT;
	ret = dma_mmap_coherent(dev, vma, chunk->cpu, chunk->bus, buf->chunk_size);
	vma->vm_pgoff = pgoff;
	if (ret) {
		dev_err(dev, "mmap: chunk %llu of buffer %u: %d\n", idx, id, ret);
		goto out;
	}
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND;
	vma->vm_ops = &rshim_dma_vm_ops;
	vma->vm_private_data = buf;
	atomic_inc(&buf->maps);
out:
	mutex_unlock(&rdev->lock);
	return ret;
}

static int rshim_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct rshim_dev *rdev = file->private_data;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 index = off >> RSHIM_MMAP_SHIFT;

	if (READ_ONCE(rdev->gone))
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (index < PCI_STD_NUM_BARS)
		return rshim_mmap_bar(rdev, vma, index, off & RSHIM_MMAP_WITHIN);
	if (index > RSHIM_MMAP_DMA_INDEX && index <= RSHIM_MMAP_DMA_INDEX + RSHIM_MAX_BUF_ID)
		return rshim_mmap_dma(rdev, file, vma, index - RSHIM_MMAP_DMA_INDEX,
				      off & RSHIM_MMAP_WITHIN);
	return -EINVAL;
}

static const struct file_operations rshim_fops = {
	.owner = THIS_MODULE,
	.open = rshim_open,
	.release = rshim_release,
	.unlocked_ioctl = rshim_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = rshim_mmap,
	.llseek = no_llseek,
};

/* PCI driver */

static int rshim_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	static const char * const irq_names[] = { "none", "INTx", "MSI", "MSI-X" };
	struct device *dev = &pdev->dev;
	struct rshim_dev *rdev;
	int ret, i, nmem = 0;

	rdev = kzalloc(sizeof(*rdev), GFP_KERNEL);
	if (!rdev)
		return -ENOMEM;
	kref_init(&rdev->kref);
	rdev->pdev = pci_dev_get(pdev);
	mutex_init(&rdev->lock);
	init_rwsem(&rdev->bar_sem);
	INIT_LIST_HEAD(&rdev->bufs);
	ida_init(&rdev->buf_ida);

	ret = pcim_enable_device(pdev);
	if (ret) {
		dev_err(dev, "cannot enable the device: %d\n", ret);
		goto err_put;
	}
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret) {
		dev_err(dev, "cannot claim the BARs (another driver has them?): %d\n", ret);
		goto err_put;
	}
	rdev->dma_mask_bits = 64;
	if (dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64))) {
		rdev->dma_mask_bits = 32;
		ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32));
		if (ret) {
			dev_err(dev, "neither a 64- nor a 32-bit DMA mask works: %d\n", ret);
			goto err_put;
		}
	}
	rdev->default_mask_bits = rdev->dma_mask_bits;
	ret = rshim_setup_irqs(rdev);
	if (ret)
		goto err_irqs;

	snprintf(rdev->name, sizeof(rdev->name), "readout-%s", pci_name(pdev));
	snprintf(rdev->nodename, sizeof(rdev->nodename), "readout/%s", pci_name(pdev));
	rdev->misc.minor = MISC_DYNAMIC_MINOR;
	rdev->misc.name = rdev->name;
	rdev->misc.nodename = rdev->nodename;
	rdev->misc.fops = &rshim_fops;
	rdev->misc.parent = dev;
	pci_set_drvdata(pdev, rdev);
	ret = misc_register(&rdev->misc);
	if (ret) {
		dev_err(dev, "cannot register /dev/%s: %d\n", rdev->nodename, ret);
		goto err_irqs;
	}

	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		if (pci_resource_len(pdev, i) && (pci_resource_flags(pdev, i) & IORESOURCE_MEM))
			nmem++;
	dev_info(dev, "%04x:%04x rev %02x bound as /dev/%s: memory BARs %d, interrupts %s x%u, DMA mask %u bits\n",
		 pdev->vendor, pdev->device, pdev->revision, rdev->nodename, nmem,
		 irq_names[rdev->irq_type],
		 rdev->nvec, rdev->dma_mask_bits);
	return 0;

err_irqs:
	rshim_free_irqs(rdev);
err_put:
	/* The rest is pcim_/devm_ managed and undone by the driver core. */
	kref_put(&rdev->kref, rshim_free);
	return ret;
}

static void rshim_remove(struct pci_dev *pdev)
{
	struct rshim_dev *rdev = pci_get_drvdata(pdev);
	unsigned int users;
	pid_t owner = 0;

	/* Once it returns, nobody opens the device any more. */
	misc_deregister(&rdev->misc);

	mutex_lock(&rdev->lock);
	down_write(&rdev->bar_sem);
	WRITE_ONCE(rdev->gone, true);
	up_write(&rdev->bar_sem);
	pci_clear_master(pdev);
	rdev->master = false;
	rshim_free_irqs(rdev);
	rshim_unbind_eventfds(rdev);
	if (rdev->owner_pid)
		owner = pid_nr(rdev->owner_pid);
	mutex_unlock(&rdev->lock);
	/* New faults get SIGBUS now; the ones already in are zapped here. */
	if (rdev->inode)
		unmap_mapping_range(rdev->inode->i_mapping, 0,
				    RSHIM_MMAP_BAR(PCI_STD_NUM_BARS), 1);

	users = kref_read(&rdev->kref) - 1;
	if (users)
		dev_info(&pdev->dev, "removed while open (%u files): bus mastering switched off, BAR mappings revoked%s\n",
			 users,
			 owner ? ", the owner's DMA buffers go when its file is released" : "");
	else
		dev_info(&pdev->dev, "removed /dev/%s\n", rdev->nodename);
	kref_put(&rdev->kref, rshim_free);
}

/*
 * Dynamic ids only: from the ids parameter and from new_id. No table, not
 * even an empty one: new_id refuses (EINVAL) any id whose driver_data no
 * entry of a table has, and an empty table has no entry.
 */
static struct pci_driver rshim_driver = {
	.name = KBUILD_MODNAME,
	.id_table = NULL,
	.probe = rshim_probe,
	.remove = rshim_remove,
};

static int rshim_hex16(const char *s, size_t n, u16 *val)
{
	u32 v = 0;
	size_t i;

	if (!n || n > 4)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		int d = hex_to_bin(s[i]);

		if (d < 0)
			return -EINVAL;
		v = v << 4 | d;
	}
	*val = v;
	return 0;
}

/* Checks every entry of ids, and with add, adds it as a dynamic id. */
static int rshim_ids(bool add)
{
	const char *p = ids;
	int ret;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		const char *colon = strnchr(p, len, ':');
		u16 vendor, device;

		if (!colon || rshim_hex16(p, colon - p, &vendor) ||
		    rshim_hex16(colon + 1, p + len - colon - 1, &device)) {
			pr_err("ids: malformed entry \"%.*s\": expected vvvv:dddd in hex, separated by commas\n",
			       (int)len, p);
			return -EINVAL;
		}
		if (add) {
			ret = pci_add_dynid(&rshim_driver, vendor, device,
					    PCI_ANY_ID, PCI_ANY_ID, 0, 0, 0);
			if (ret) {
				pr_err("ids: cannot add %04x:%04x: %d\n", vendor, device, ret);
				return ret;
			}
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int __init rshim_init(void)
{
	int ret;

	if (!rshim_irq_kinds()) {
		pr_err("irq_mode=%s: expected auto, msix, msi or intx\n", irq_mode);
		return -EINVAL;
	}
	ret = rshim_ids(false);
	if (ret)
		return ret;
	ret = pci_register_driver(&rshim_driver);
	if (ret)
		return ret;
	ret = rshim_ids(true);
	if (ret) {
		pci_unregister_driver(&rshim_driver);
		return ret;
	}
	return 0;
}

static void __exit rshim_exit(void)
{
	pci_unregister_driver(&rshim_driver);
}

module_init(rshim_init);
module_exit(rshim_exit);

MODULE_DESCRIPTION("readoutd's thin PCI driver: BARs, DMA buffers and interrupts for user space");
MODULE_LICENSE("GPL");
