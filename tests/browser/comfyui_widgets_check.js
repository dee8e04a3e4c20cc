// Page helpers for tests/integration/test_frontends_server.py: the GIDModalSimulation node's two DOM
// widgets (GID.DragPoints, GID.LivePreview) in a real ComfyUI frontend, old (LiteGraph canvas) or
// new (Vue node renderer). Evaluated into the page as `window.gidCheck`; every method returns
// plain JSON. Pointer input comes from the test through the DevTools protocol (real mouse events
// at the rectangles these helpers report), so the frontend's own event handling is exercised.

window.gidCheck = (() => {
    const comfy = () => window.comfyAPI.app.app;
    const api = () => window.comfyAPI.api.api;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const NODE_CLASS = "GIDModalSimulation";

    const modalNode = () => comfy().graph.nodes.find((node) => node.comfyClass === NODE_CLASS);
    const widget = (node, name) => node.widgets?.find((w) => w.name === name);
    const element = (name) => widget(modalNode(), name)?.element ?? null;
    const rect = (el) => {
        const box = el.getBoundingClientRect();
        return { x: box.x, y: box.y, width: box.width, height: box.height };
    };

    /** The node's group: the group whose bounding contains the node's position. */
    function groupOf(node) {
        const [x, y] = node.pos;
        const groups = comfy().graph.groups ?? comfy().graph._groups ?? [];
        const group = groups.find((g) => {
            const [gx, gy, gw, gh] = g._bounding ?? g.bounding;
            return x >= gx && y >= gy && x <= gx + gw && y <= gy + gh;
        });
        return group ? [...(group._bounding ?? group.bounding)] : null;
    }

    /** Text cut off in an element: wider or taller than shown (ellipsis, overflow hidden). */
    const cutOff = (el) => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;

    function pixels(canvas) {
        const scratch = Object.assign(document.createElement("canvas"), { width: canvas.width, height: canvas.height });
        const context = scratch.getContext("2d");
        context.drawImage(canvas, 0, 0);
        return context.getImageData(0, 0, canvas.width, canvas.height).data;
    }

    function meanAbsDiff(a, b) {
        let total = 0;
        for (let i = 0; i < a.length; i += 4) total += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
        return total / ((a.length / 4) * 3);
    }

    function vueBottom(node) {
        const shown = document.querySelector(`[data-node-id="${node.id}"]`);
        if (!shown) return null;
        const { ds, canvas } = comfy().canvas;
        const clientY = shown.getBoundingClientRect().bottom - canvas.getBoundingClientRect().top;
        return clientY / ds.scale - ds.offset[1];
    }

    let restPixels = null;

    return {
        /** Show the node at 100% zoom near the top left of the window; report what the test needs. */
        async show() {
            const node = modalNode();
            const canvas = comfy().canvas;
            canvas.ds.scale = 1;
            canvas.ds.offset[0] = 200 - node.pos[0]; // clear of the side bar and the breadcrumb
            canvas.ds.offset[1] = 140 - node.pos[1];
            canvas.setDirty(true, true);
            await sleep(600); // the next frames place the DOM widgets (old frontend) or Vue nodes (new)
            const dragCanvas = element("gid_drag_points")?.querySelector("canvas");
            const previewRoot = element("gid_live_preview");
            const previewCanvas = previewRoot?.querySelector("canvas") ?? null;
            const statuses = [element("gid_drag_points"), previewRoot].map((root) => root?.querySelector("[data-gid-status]"));
            return {
                vueNodes: !!document.querySelector("[data-node-id]"),
                version: window.__COMFYUI_FRONTEND_VERSION__ ?? null,
                nodeSize: [...node.size],
                // Under the Vue node renderer the node's element may be taller than node.size says
                // (its content decides): where it ends, in graph units (null without Vue nodes).
                shownBottom: vueBottom(node),
                computedSize: node.computeSize ? [...node.computeSize()] : null,
                widgetHeights: ["gid_drag_points", "gid_live_preview"].map((name) => element(name)?.getBoundingClientRect().height ?? null),
                nodePos: [...node.pos],
                group: groupOf(node),
                widgetsConnected: ["gid_drag_points", "gid_live_preview"].map((name) => !!element(name)?.isConnected),
                dragCanvas: dragCanvas ? rect(dragCanvas) : null,
                previewCanvas: previewCanvas ? rect(previewCanvas) : null,
                statusTexts: statuses.map((span) => span?.textContent ?? null),
                statusCutOff: statuses.map((span) => (span ? cutOff(span) : null)),
                drags: widget(node, "drags")?.value ?? null,
            };
        },

        /** Lower widget values before queueing: {comfyClass: {widget: value}}. */
        setWidgets(values) {
            for (const node of comfy().graph.nodes) {
                for (const [name, value] of Object.entries(values[node.comfyClass] ?? {})) {
                    const w = widget(node, name);
                    if (w) w.value = value;
                }
            }
            return true;
        },

        /** Queue the graph as the Queue button would; returns the prompt id. */
        async queue() {
            const prompt = await comfy().graphToPrompt();
            const reply = await api().queuePrompt(0, prompt);
            return reply.prompt_id;
        },

        /** Wait for the live preview's canvas after a run (the node's onExecuted loads it). */
        async waitForPreview(timeoutMs) {
            const began = performance.now();
            while (performance.now() - began < timeoutMs) {
                const canvas = element("gid_live_preview")?.querySelector("canvas");
                if (canvas) {
                    await sleep(300);
                    return true;
                }
                await sleep(200);
            }
            return false;
        },

        rememberRest() {
            restPixels = pixels(element("gid_live_preview").querySelector("canvas"));
            return modalNode().livePreviewFramesDrawn?.() ?? null;
        },

        /** Mean absolute difference (0..255) of the preview's pixels from the remembered rest. */
        previewDiff() {
            return meanAbsDiff(restPixels, pixels(element("gid_live_preview").querySelector("canvas")));
        },

        framesDrawn() {
            return modalNode().livePreviewFramesDrawn?.() ?? null;
        },

        /** Click a widget's button by its label; returns the drags widget's value. */
        clickButton(widgetName, label) {
            [...element(widgetName).querySelectorAll("button")].find((b) => b.textContent === label).click();
            return widget(modalNode(), "drags").value;
        },

        /** Click Record; returns the drags widget's value and the preview's status. */
        record() {
            const drags = this.clickButton("gid_live_preview", "Record");
            return { drags, status: element("gid_live_preview").querySelector("[data-gid-status]").textContent };
        },
    };
})();
true;
