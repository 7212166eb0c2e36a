/*  benchtxnid.c -- the last transaction id of an LMDB environment (see
 *  benchtxnid.h).  Opened read-only and closed again at once: the broker
 *  keeps writing meanwhile.
 */
#include "bench/benchtxnid.h"

#include <lmdb.h>
#include <stddef.h>

#include "schemas/syerr.h"

int benchtxnid_read(const char *dir, uint64_t *out)
{
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 32);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0600);
    MDB_envinfo info;
    if (rc == 0)
        rc = mdb_env_info(env, &info);
    if (rc == 0)
        *out = (uint64_t)info.me_last_txnid;
    if (env)
        mdb_env_close(env);
    return rc == 0 ? 0 : SY_EIO;
}
